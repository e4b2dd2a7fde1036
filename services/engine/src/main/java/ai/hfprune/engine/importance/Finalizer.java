package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.hfprune.engine.nn.DecoderLayer;
import ai.hfprune.engine.nn.LlamaModel;

import java.util.SplittableRandom;

/** Turns accumulated {@link Partial}s into {@link Scores}; the weight-dependent factors are computed here, once. */
public final class Finalizer {
    private Finalizer() {
    }

    public static Scores finalize(Partial total, LlamaModel model, long randomSeed) {
        int layers = model.layers().size();
        int headDim = model.config().headDim();
        double[][] mlp = new double[layers][];
        double[][] heads = new double[layers][];
        try (NDManager scratch = model.manager().newSubManager()) {
            for (int l = 0; l < layers; l++) {
                DecoderLayer layer = model.layers().get(l);
                int numHeads = layer.numHeads(headDim);
                switch (total.criterion()) {
                    case ENTROPY, CE -> {
                        mlp[l] = total.mlp()[l].clone();
                        heads[l] = total.heads()[l].clone();
                    }
                    case ACTIVATION -> {
                        // ‖down_proj[:, i]‖₂ · sqrt(Σ A²); per head: ‖o_proj columns of h‖_F · sqrt(Σ O²)
                        mlp[l] = times(columnNorms(scratch, layer.downProj(), 1), sqrt(total.mlp()[l]));
                        heads[l] = times(columnNorms(scratch, layer.oProj(), headDim), sqrt(total.heads()[l]));
                    }
                    case MAGNITUDE -> {
                        mlp[l] = hypot(rowNorms(scratch, layer.gateProj(), 1), rowNorms(scratch, layer.upProj(), 1),
                                columnNorms(scratch, layer.downProj(), 1));
                        heads[l] = headMagnitudes(scratch, layer, numHeads, headDim);
                    }
                    case RANDOM -> {
                        SplittableRandom random = new SplittableRandom(randomSeed * 1_000_003L + l);
                        mlp[l] = random.doubles(layer.intermediateSize()).toArray();
                        heads[l] = random.doubles(numHeads).toArray();
                    }
                }
            }
        }
        return new Scores(total.criterion(), total.windows(), total.tokens(), mlp, heads);
    }

    /** A query head's weights: its q rows, o columns, and the k/v rows of the KV head it reads. */
    private static double[] headMagnitudes(NDManager scratch, DecoderLayer layer, int numHeads, int headDim) {
        double[] q = rowNorms(scratch, layer.qProj(), headDim);
        double[] k = rowNorms(scratch, layer.kProj(), headDim);
        double[] v = rowNorms(scratch, layer.vProj(), headDim);
        double[] o = columnNorms(scratch, layer.oProj(), headDim);
        int group = numHeads / k.length;
        double[] out = new double[numHeads];
        for (int h = 0; h < numHeads; h++) {
            int kv = h / group;
            out[h] = Math.sqrt(q[h] * q[h] + k[kv] * k[kv] + v[kv] * v[kv] + o[h] * o[h]);
        }
        return out;
    }

    /** L2 norm of each block of {@code block} consecutive rows of a (rows, columns) weight. */
    static double[] rowNorms(NDManager scratch, NDArray weight, int block) {
        NDArray w = weight.toType(DataType.FLOAT64, true);
        w.attach(scratch);
        long rows = w.getShape().get(0);
        return w.reshape(rows / block, -1).square().sum(new int[] {1}).sqrt().toDoubleArray();
    }

    /** L2 norm of each block of {@code block} consecutive columns of a (rows, columns) weight. */
    static double[] columnNorms(NDManager scratch, NDArray weight, int block) {
        NDArray w = weight.toType(DataType.FLOAT64, true);
        w.attach(scratch);
        long rows = w.getShape().get(0);
        long cols = w.getShape().get(1);
        return w.reshape(rows, cols / block, block).square().sum(new int[] {0, 2}).sqrt().toDoubleArray();
    }

    private static double[] sqrt(double[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = Math.sqrt(x[i]);
        }
        return out;
    }

    private static double[] times(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] * b[i];
        }
        return out;
    }

    private static double[] hypot(double[] a, double[] b, double[] c) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = Math.sqrt(a[i] * a[i] + b[i] * b[i] + c[i] * c[i]);
        }
        return out;
    }
}
