package ai.hfprune.cli;

import ai.djl.pytorch.jni.JniUtils;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.GreedyDecoder;
import ai.hfprune.engine.nn.LlamaModel;
import ai.hfprune.engine.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Continue a prompt with greedy decoding (BOS + prompt).")
public class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOption model;

    @Option(names = "--prompt", required = true, description = "The text to continue.")
    String prompt;

    @Option(names = "--max-new-tokens", defaultValue = "64", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (maxNewTokens < 1) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--max-new-tokens must be at least 1");
        }
        PrintWriter out = spec.commandLine().getOut();
        try (Checkpoint checkpoint = model.open(); LlamaModel llama = checkpoint.load()) {
            if (System.getProperty("ai.djl.pytorch.num_threads") == null) {
                // One token at a time is hundreds of tiny operations per token: a second OpenMP thread only adds a barrier
                // to each (bench generate: 8x the CPU time and 3x the wall time of one thread, stories3M on 2 cores).
                JniUtils.setNumThreads(1);
            }
            Tokenizer tokenizer = checkpoint.tokenizer();
            int[] promptIds = tokenizer.encode(prompt);
            int[] prefix = new int[1 + promptIds.length];
            prefix[0] = tokenizer.bosId();
            System.arraycopy(promptIds, 0, prefix, 1, promptIds.length);
            out.print(prompt);
            int limit = Math.min(prefix.length + maxNewTokens, llama.config().maxPositionEmbeddings());
            Printer printer = new Printer(tokenizer, prefix, out);
            GreedyDecoder.generate(llama, prefix, limit, tokenizer.eosId(), GreedyDecoder.Mode.CACHED, printer::add);
            out.println();
        }
        return 0;
    }

    /** Prints each token's text as it comes: what the decoded sequence gained (a partial UTF-8 sequence waits). */
    private static final class Printer {
        private final Tokenizer tokenizer;
        private final PrintWriter out;
        private int[] ids;
        private int length;
        private String printed;

        Printer(Tokenizer tokenizer, int[] prefix, PrintWriter out) {
            this.tokenizer = tokenizer;
            this.out = out;
            this.ids = prefix.clone();
            this.length = prefix.length;
            this.printed = tokenizer.decode(prefix);
        }

        void add(int token) {
            if (length == ids.length) {
                ids = Arrays.copyOf(ids, 2 * length);
            }
            ids[length++] = token;
            String text = tokenizer.decode(Arrays.copyOf(ids, length));
            if (text.startsWith(printed)) {
                out.print(text.substring(printed.length()));
                printed = text;
            }
            out.flush();
        }
    }
}
