package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.tokenizer.Tokenizer;
import ai.hfprune.engine.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/** Text to token ids and back with a model's tokenizer, without loading its weights. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids of a text (without BOS unless --bos), or with --decode the text of ids.")
public class TokenizeCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Option(names = "--text", paramLabel = "T", description = "The text (with --decode: ids separated by spaces or commas).")
    String text;

    @Option(names = "--file", paramLabel = "F", description = "Read the text (or the ids) from a UTF-8 file instead.")
    Path file;

    @Option(names = "--decode", description = "Turn ids into text.")
    boolean decode;

    @Option(names = "--bos", description = "Put the BOS id first (as scoring and generation do).")
    boolean bos;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        if ((text == null) == (file == null)) {
            throw new HfpruneException("give exactly one of --text and --file");
        }
        String input = text != null ? text : read(file);
        Tokenizer tokenizer = Tokenizers.open(model.path());
        try {
            PrintWriter out = spec.commandLine().getOut();
            if (decode) {
                out.println(tokenizer.decode(ids(input, tokenizer.vocabSize())));
            } else {
                int[] ids = tokenizer.encode(input);
                if (bos) {
                    ids = prepend(tokenizer.bosId(), ids);
                }
                out.println(Arrays.stream(ids).mapToObj(String::valueOf).collect(Collectors.joining(" ")));
            }
            out.flush();
        } finally {
            if (tokenizer instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (Exception e) {
                    throw new HfpruneException("closing the tokenizer: " + e.getMessage(), e);
                }
            }
        }
        return 0;
    }

    /** The whole file as strict UTF-8: a byte sequence that is not UTF-8 is an error, not a U+FFFD. */
    private static String read(Path f) {
        if (!Files.isRegularFile(f)) {
            throw new HfpruneException("--file " + f + " is not a file");
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(f))).toString();
        } catch (CharacterCodingException e) {
            throw new HfpruneException("--file " + f + " is not valid UTF-8");
        } catch (IOException e) {
            throw new HfpruneException("cannot read --file " + f + ": " + e.getMessage(), e);
        }
    }

    private static int[] ids(String input, int vocabSize) {
        String[] parts = input.strip().split("[\\s,]+");
        if (parts.length == 1 && parts[0].isEmpty()) {
            return new int[0];
        }
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new HfpruneException("--decode: '" + parts[i] + "' is not a token id");
            }
            if (ids[i] < 0 || ids[i] >= vocabSize) {
                throw new HfpruneException("--decode: token id " + ids[i] + " is outside the vocabulary [0, " + vocabSize + ")");
            }
        }
        return ids;
    }

    private static int[] prepend(int first, int[] ids) {
        int[] out = new int[ids.length + 1];
        out[0] = first;
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
