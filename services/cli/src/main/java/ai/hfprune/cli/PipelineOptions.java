package ai.hfprune.cli;

import ai.hfprune.pipeline.common.PipelineConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The settings of the pipeline commands: {@code --bootstrap}, {@code --config FILE} (a properties file),
 * {@code --set key=value} for any setting, and environment variables {@code HFPRUNE_KEY_NAME}. Flags win over the
 * environment, which wins over the file. Defaults for the model and the data come from the assets folder.
 */
public class PipelineOptions {

    @Option(names = "--bootstrap", paramLabel = "HOST:PORT", description = "Kafka bootstrap servers (run: default the embedded broker).")
    String bootstrap;

    @Option(names = "--config", paramLabel = "FILE", description = "A properties file of settings (see the README's table).")
    Path configFile;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Any setting, e.g. --set coverage.min.tokens=4096 (repeatable).")
    Map<String, String> settings = new LinkedHashMap<>();

    @Option(names = "--model", paramLabel = "MODEL", description = "GGUF file or Hugging Face directory (default: stories260K from the assets).")
    Path model;

    @Option(names = "--data", paramLabel = "FILES", description = "Comma list of .txt/.jsonl files or folders (default: TinyStories train-head-2MiB.txt).")
    String data;

    /** The settings, with model, data and eval.data resolved to paths. */
    public PipelineConfig config() {
        Map<String, String> flags = new LinkedHashMap<>(settings);
        if (bootstrap != null) {
            flags.put("bootstrap.servers", bootstrap);
        }
        if (model != null) {
            flags.put("model", model.toString());
        }
        if (data != null) {
            flags.put("data", data);
        }
        PipelineConfig c = PipelineConfig.load(flags, configFile, System.getenv());
        if (c.get("model").isBlank()) {
            c = c.with("model", Assets.resolve(Assets.DEFAULT_MODEL).toString());
        }
        if (c.get("data").isBlank()) {
            c = c.with("data", Assets.resolve(Assets.DEFAULT_CALIBRATION).toString());
        }
        if (c.get("eval.data").isBlank()) {
            c = c.with("eval.data", Assets.resolve(Assets.DEFAULT_EVALUATION).toString());
        }
        return c;
    }
}
