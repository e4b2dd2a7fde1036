package ai.hfprune.engine;

/**
 * A problem with the user's input (a file, a flag, a record): the message is written for the user,
 * and the command line prints it alone, without a stack trace.
 */
public class HfpruneException extends RuntimeException {
    public HfpruneException(String message) {
        super(message);
    }

    public HfpruneException(String message, Throwable cause) {
        super(message, cause);
    }
}
