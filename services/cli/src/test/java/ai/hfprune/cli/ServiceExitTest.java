package ai.hfprune.cli;

import ai.hfprune.pipeline.common.ClientConfigs;
import ai.hfprune.pipeline.embedded.EmbeddedKafka;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The process of a service whose worker died ends with status 1 and one line naming the cause, so that a restart
 * policy fires: {@code hfprune scorer} fenced by a twin's producer (what a second process with its instance.id does).
 */
class ServiceExitTest {

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void aFencedScorerProcessExitsWithStatus1() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CommandLine cli = Main.commandLine();
            cli.setOut(new PrintWriter(out, true));
            cli.setErr(new PrintWriter(err, true));
            CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> cli.execute("scorer",
                    "--bootstrap", kafka.bootstrapServers(), "--set", "instance.id=exiting", "--set", "topic.prefix=exit.",
                    "--set", "topic.partitions=1", "--set", "schema.registry.url=mock://service-exit-test"));

            String health = awaitUrl(out, exit).replace("/metrics", "/health/ready");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (status(health) != 200) { // RUNNING: its producer has its transactional id
                assertTrue(System.nanoTime() < deadline && !exit.isDone(), "the scorer never became ready: " + err);
                Thread.sleep(100);
            }
            String bootstrap = kafka.bootstrapServers();
            try (KafkaProducer<byte[], byte[]> twin = new KafkaProducer<>(ClientConfigs.transactional(bootstrap, "twin", "exit.scorer-exiting"),
                    new ByteArraySerializer(), new ByteArraySerializer());
                 KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(ClientConfigs.producer(bootstrap, "garbage"),
                         new ByteArraySerializer(), new ByteArraySerializer())) {
                twin.initTransactions();
                p.send(new ProducerRecord<>("exit.calibration-batches", "garbage".getBytes(StandardCharsets.UTF_8))).get();
            }
            assertEquals(1, exit.get(90, TimeUnit.SECONDS), () -> "out: " + out + "\nerr: " + err);
            assertTrue(err.toString().startsWith("hfprune: error: scorer exiting failed: ") && err.toString().contains("fenced"),
                    err.toString());
            assertEquals(1, err.toString().lines().count(), "one line: " + err);
        }
    }

    private static String awaitUrl(StringWriter out, CompletableFuture<Integer> exit) throws InterruptedException {
        Pattern url = Pattern.compile("at (http://\\S+/metrics)");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            Matcher m = url.matcher(out.toString());
            if (m.find()) {
                return m.group(1);
            }
            assertTrue(System.nanoTime() < deadline && !exit.isDone(), "no metrics URL printed: " + out);
            Thread.sleep(100);
        }
    }

    private static int status(String url) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.discarding())
                .statusCode();
    }
}
