package ai.hfprune.cli.chaos;

import ai.hfprune.engine.HfpruneException;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Ports for processes that are killed and started again on the same port. Why not {@code new ServerSocket(0)}: that
 * port comes from the kernel's ephemeral range, the one every outgoing connection takes its local port from, so while
 * a killed service is down one of the dozens of reconnecting Kafka clients may take its port as a local port and keep
 * it, and the successor cannot bind. The ports here lie below that range ({@code net.ipv4.ip_local_port_range}), are
 * free when chosen, and are never handed out twice by one JVM.
 */
final class ListenPorts {

    private static final Path RANGE = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
    private static final Set<Integer> GIVEN = ConcurrentHashMap.newKeySet();
    private static final Random RANDOM = new Random();

    private ListenPorts() {
    }

    /** A port free now on 127.0.0.1 and outside the ephemeral range. */
    static int next() {
        int below = ephemeralLow();
        int from = Math.max(1024, below - 10_000);
        for (int attempt = 0; attempt < 200; attempt++) {
            int port = from + RANDOM.nextInt(below - from);
            if (GIVEN.contains(port)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
                s.setReuseAddress(true);
            } catch (IOException taken) {
                continue;
            }
            if (GIVEN.add(port)) {
                return port;
            }
        }
        throw new HfpruneException("no free port found from " + from + " to " + below);
    }

    /**
     * The low end of the ephemeral range: 32768 (Linux's default) where it cannot be read or leaves fewer than a
     * thousand ports below it.
     */
    static int ephemeralLow() {
        try {
            int low = Integer.parseInt(Files.readString(RANGE).trim().split("\\s+")[0]);
            return low >= 2048 ? low : 32768;
        } catch (IOException | RuntimeException e) {
            return 32768;
        }
    }
}
