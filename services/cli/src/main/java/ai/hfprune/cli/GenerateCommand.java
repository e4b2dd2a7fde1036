package ai.hfprune.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.hfprune.engine.model.Checkpoint;
import ai.hfprune.engine.nn.ActivationTap;
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
            Tokenizer tokenizer = checkpoint.tokenizer();
            int[] promptIds = tokenizer.encode(prompt);
            int[] ids = Arrays.copyOf(new int[] {tokenizer.bosId()}, 1 + promptIds.length + maxNewTokens);
            System.arraycopy(promptIds, 0, ids, 1, promptIds.length);
            int length = 1 + promptIds.length;
            out.print(prompt);
            String printed = tokenizer.decode(Arrays.copyOf(ids, length));
            int limit = Math.min(ids.length, llama.config().maxPositionEmbeddings());
            while (length < limit) {
                int next = greedyNext(llama, Arrays.copyOf(ids, length));
                if (next == tokenizer.eosId()) {
                    break;
                }
                ids[length++] = next;
                String text = tokenizer.decode(Arrays.copyOf(ids, length));
                if (text.startsWith(printed)) { // print only what is new; a partial UTF-8 byte sequence waits
                    out.print(text.substring(printed.length()));
                    printed = text;
                }
                out.flush();
            }
            out.println();
        }
        return 0;
    }

    static int greedyNext(LlamaModel llama, int[] ids) {
        try (NDManager batch = llama.manager().newSubManager()) {
            long[] longs = Arrays.stream(ids).asLongStream().toArray();
            NDArray logits = llama.forward(batch.create(longs, new Shape(1, longs.length)), ActivationTap.NONE);
            return (int) logits.get("0, -1, :").argMax().getLong();
        }
    }
}
