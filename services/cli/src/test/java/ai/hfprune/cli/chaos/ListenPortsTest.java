package ai.hfprune.cli.chaos;

import org.junit.jupiter.api.Test;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ListenPortsTest {

    @Test
    void portsAreFreeDistinctAndBelowTheEphemeralRange() {
        int low = ListenPorts.ephemeralLow();
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 50; i++) {
            int port = ListenPorts.next();
            assertTrue(port >= 1024 && port < low, port + " is not below the ephemeral range's " + low);
            assertTrue(seen.add(port), port + " handed out twice");
            assertDoesNotThrow(() -> new ServerSocket(port, 1, InetAddress.getLoopbackAddress()).close(), "port " + port);
        }
    }
}
