package ai.hfprune.cli;

import ai.hfprune.engine.HfpruneException;
import ai.hfprune.engine.MallocTuning;
import ai.hfprune.engine.MklOverride;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code hfprune} command line. */
@Command(name = "hfprune", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Entropy-Taylor structured pruning of LLaMA/Qwen models (HFPrune).",
        subcommands = {GenerateCommand.class, TokenizeCommand.class, ScoreCommand.class, PruneCommand.class, EvalCommand.class, RunCommand.class,
            ServiceCommands.Sampler.class, ServiceCommands.Scorer.class, ServiceCommands.Aggregator.class,
            ServiceCommands.Pruner.class, BrokerCommand.class, BenchCommand.class})
public class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** The version, and whether libtorch's MKL runs with the vendor override (see {@link MklOverride}). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"hfprune 0.1.0", MklOverride.describe(), MallocTuning.describe()};
        }
    }

    /** The command line with hfprune's error handling: bad input prints one line and exits 1, never a stack trace. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        // picocli's default answer to an option it cannot parse ('--mlp-ratio abc', an unknown or missing option) is
        // the whole usage text and exit status 2; hfprune answers that bad input like any other: one line, status 1
        cli.setParameterExceptionHandler((e, args) -> {
            CommandLine.Model.CommandSpec spec = e.getCommandLine().getCommandSpec();
            e.getCommandLine().getErr().println("hfprune: error: " + e.getMessage() + " (see '" + spec.qualifiedName() + " --help')");
            return 1;
        });
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            Throwable cause = e;
            while (cause != null && !(cause instanceof HfpruneException)) {
                cause = cause.getCause();
            }
            if (cause != null) {
                commandLine.getErr().println("hfprune: error: " + cause.getMessage());
                return 1;
            }
            throw e;
        });
        return cli;
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
