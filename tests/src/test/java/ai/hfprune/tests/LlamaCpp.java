package ai.hfprune.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Assumptions;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * llama.cpp, prebuilt, through the npm package node-llama-cpp, driven by {@code tests/llamacpp/oracle.mjs}. The
 * package is installed on first use from the project's own {@code package.json} and {@code package-lock.json}
 * (pinned, scripts off: nothing is compiled), so a fresh clone needs only node, npm and the npm registry.
 */
final class LlamaCpp implements AutoCloseable {

    static final JsonMapper JSON = new JsonMapper();
    private static final long INSTALL_MINUTES = 10;
    private static final long ANSWER_MINUTES = 5;

    static Path dir() {
        return RepositoryRoot.find().resolve("tests/llamacpp");
    }

    private static String missing; // why the oracle cannot run here, once known
    private static boolean installed;

    /**
     * Skips the calling test, with the reason in the test report (and once on stderr), where node or npm is missing;
     * installs the package on first use. Call it per test ({@code @BeforeEach}): an assumption failing in
     * {@code @BeforeAll} leaves no trace in Maven's summary ("Tests run: 0").
     */
    static synchronized void requireInstalled() throws IOException, InterruptedException {
        if (!installed && missing == null) {
            for (String tool : List.of("node", "npm")) {
                if (missing == null && !runs(tool, "--version")) {
                    missing = tool + " is not on the PATH: the llama.cpp oracle tests are skipped (they need Node.js 18+"
                            + " and npm)";
                    System.err.println("WARNING: " + missing);
                }
            }
            if (missing == null) {
                install();
                installed = true;
            }
        }
        Assumptions.assumeTrue(missing == null, missing);
    }

    private static void install() throws IOException, InterruptedException {
        String wanted = JSON.readTree(dir().resolve("package.json").toFile()).at("/dependencies/node-llama-cpp").asText();
        Path installed = dir().resolve("node_modules/node-llama-cpp/package.json");
        if (Files.isRegularFile(installed) && wanted.equals(JSON.readTree(installed.toFile()).get("version").asText())) {
            return;
        }
        // `npm ci` refuses this lock file (npm leaves the other platforms' optional binaries out of it and then calls
        // it out of sync), so `npm install`, which follows the lock; --omit=optional skips 600 MB of CUDA/Vulkan builds.
        Result r = run(dir(), INSTALL_MINUTES * 60, "npm", "install", "--ignore-scripts", "--omit=optional", "--no-audit",
                "--no-fund", "--no-save");
        if (r.code() != 0) {
            throw new IllegalStateException("npm install in " + dir() + " failed (" + r.code() + "):\n" + r.err());
        }
    }

    /** Starts the oracle (oracle.mjs), which answers requests one at a time until {@link #close}. */
    static LlamaCpp start() throws IOException {
        Path log = Files.createTempFile("llamacpp-oracle", ".err");
        Process p = new ProcessBuilder("node", "oracle.mjs").directory(dir().toFile())
                .redirectError(log.toFile()).start();
        return new LlamaCpp(p, log);
    }

    private final Process process;
    private final Path log;
    private final BufferedWriter in;
    private final BufferedReader out;
    private final ExecutorService reader = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "llamacpp-oracle-reader");
        t.setDaemon(true);
        return t;
    });

    private LlamaCpp(Process process, Path log) {
        this.process = process;
        this.log = log;
        this.in = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
        this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    }

    /** One request (see oracle.mjs) and its answer. */
    JsonNode ask(ObjectNode request) throws IOException {
        in.write(request.toString());
        in.newLine();
        in.flush();
        String line;
        try { // a hung oracle fails the test rather than the build hanging
            line = reader.submit(out::readLine).get(ANSWER_MINUTES, TimeUnit.MINUTES);
        } catch (TimeoutException e) {
            process.destroyForcibly();
            throw new IllegalStateException("the llama.cpp oracle gave no answer in " + ANSWER_MINUTES + " minutes:\n"
                    + Files.readString(log));
        } catch (ExecutionException e) {
            throw new IOException("cannot read the llama.cpp oracle's answer", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the llama.cpp oracle", e);
        }
        if (line == null) {
            throw new IllegalStateException("the llama.cpp oracle stopped:\n" + Files.readString(log));
        }
        JsonNode answer = JSON.readTree(line);
        if (answer.has("error")) {
            throw new IllegalStateException("llama.cpp oracle: " + answer.get("error").asText());
        }
        return answer;
    }

    /** llama.cpp's log-probability of each window's next tokens. */
    double[][] logProbs(Path gguf, int[][] windows) throws IOException {
        ObjectNode request = JSON.createObjectNode().put("model", gguf.toString());
        ArrayNode rows = request.putArray("windows");
        for (int[] w : windows) {
            rows.add(ids(w));
        }
        JsonNode answer = ask(request);
        double[][] out = new double[windows.length][];
        for (int w = 0; w < windows.length; w++) {
            out[w] = doubles(answer.get("windows").get(w).get("logprobs"));
        }
        return out;
    }

    /** llama.cpp's ids of each text (no BOS). */
    int[][] tokenize(Path gguf, List<String> texts) throws IOException {
        ObjectNode request = JSON.createObjectNode().put("model", gguf.toString());
        ArrayNode list = request.putArray("tokenize");
        texts.forEach(list::add);
        JsonNode answer = ask(request);
        int[][] out = new int[texts.size()][];
        for (int i = 0; i < out.length; i++) {
            out[i] = ints(answer.get("tokens").get(i));
        }
        return out;
    }

    static ArrayNode ids(int[] ids) {
        ArrayNode a = JSON.createArrayNode();
        for (int id : ids) {
            a.add(id);
        }
        return a;
    }

    static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asInt();
        }
        return out;
    }

    static double[] doubles(JsonNode a) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asDouble();
        }
        return out;
    }

    @Override
    public void close() throws IOException, InterruptedException {
        reader.shutdownNow();
        in.close(); // end of input: the oracle exits
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
        Files.deleteIfExists(log);
    }

    record Result(int code, String out, String err) {
    }

    private static boolean runs(String... command) {
        try {
            return run(Path.of("."), 60, command).code() == 0;
        } catch (IOException e) {
            return false; // not installed
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static Result run(Path dir, long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Path out = Files.createTempFile("llamacpp", ".out");
        Path err = Files.createTempFile("llamacpp", ".err");
        try {
            Process p = new ProcessBuilder(command).directory(dir.toFile())
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(String.join(" ", command) + " did not finish in " + timeoutSeconds + " s");
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }
}
