package ai.hfprune.engine.eval;

/**
 * How closely a model follows a reference model on the same inputs, as sums over {@code positions} token
 * positions: KL(reference ‖ model) of the next-token distributions in nats, and how many positions have the
 * same argmax.
 */
public record Fidelity(double klSum, long agreements, long positions) {

    public static final Fidelity ZERO = new Fidelity(0, 0, 0);

    public Fidelity plus(Fidelity other) {
        return new Fidelity(klSum + other.klSum, agreements + other.agreements, positions + other.positions);
    }

    /** Mean KL(reference ‖ model) per position, in nats. */
    public double kl() {
        return klSum / positions;
    }

    /** Fraction of positions where the two models' most likely next token is the same. */
    public double top1() {
        return (double) agreements / positions;
    }
}
