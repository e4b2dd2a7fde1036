package ai.hfprune.engine.testing;

import ai.hfprune.engine.io.TensorSource;
import ai.hfprune.engine.model.ModelConfig;
import ai.hfprune.engine.model.RopeStyle;

import java.util.function.IntPredicate;

/**
 * A second, independent forward pass: plain Java loops in float64, one token at a time with a KV cache,
 * in the manner of llama2.c. Tests compare the DJL model against it.
 */
public final class ReferenceForward {

    private final ModelConfig c;
    private final TensorSource w;
    /** The inverse frequency of each rotated pair, as the test computed it; null: plain θ^(-2i/d). */
    private double[] inverseFrequencies;
    /** In the layers {@link #slidingLayer} names, position i attends to j only when i - j < window; 0: everywhere. */
    private int window;
    private IntPredicate slidingLayer = l -> false;

    public ReferenceForward(ModelConfig c, TensorSource w) {
        this.c = c;
        this.w = w;
    }

    /**
     * RoPE with these inverse frequencies (a scaled model's, computed by the test itself) instead of the plain ones;
     * the config's own scaling is never read here, so the reference stays independent of hfprune's.
     */
    public ReferenceForward withInverseFrequencies(double[] frequencies) {
        this.inverseFrequencies = frequencies.clone();
        return this;
    }

    /** Attention of the layers {@code layers} accepts limited to the last {@code window} positions, the query's own included. */
    public ReferenceForward withWindow(int window, IntPredicate layers) {
        this.window = window;
        this.slidingLayer = layers;
        return this;
    }

    /** Logits [position][vocab] for one sequence. */
    public double[][] logits(int[] tokens) {
        int hd = c.headDim();
        int layers = c.numHiddenLayers();
        int dim = c.hiddenSize();
        double[][][] keyCache = new double[layers][tokens.length][];
        double[][][] valueCache = new double[layers][tokens.length][];
        double[] embed = d(w.readFloats("model.embed_tokens.weight"));
        double[] head = d(w.readFloats(c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight"));
        double[][] out = new double[tokens.length][];
        for (int pos = 0; pos < tokens.length; pos++) {
            double[] x = new double[dim];
            System.arraycopy(embed, tokens[pos] * dim, x, 0, dim);
            for (int l = 0; l < layers; l++) {
                String p = "model.layers." + l + ".";
                double[] xb = rmsNorm(x, get(p + "input_layernorm.weight"));
                double[] q = matVec(p + "self_attn.q_proj", xb);
                double[] k = matVec(p + "self_attn.k_proj", xb);
                double[] v = matVec(p + "self_attn.v_proj", xb);
                int heads = q.length / hd;
                int kvHeads = k.length / hd;
                if (c.qkNorm()) {
                    headNorm(q, get(p + "self_attn.q_norm.weight"));
                    headNorm(k, get(p + "self_attn.k_norm.weight"));
                }
                rope(q, pos);
                rope(k, pos);
                keyCache[l][pos] = k;
                valueCache[l][pos] = v;
                double[] attn = new double[heads * hd];
                int first = window > 0 && slidingLayer.test(l) ? Math.max(0, pos - window + 1) : 0; // oldest key seen
                for (int h = 0; h < heads; h++) {
                    int kvh = h / (heads / kvHeads);
                    double[] scores = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t = first; t <= pos; t++) {
                        double s = 0;
                        for (int i = 0; i < hd; i++) {
                            s += q[h * hd + i] * keyCache[l][t][kvh * hd + i];
                        }
                        scores[t] = s / Math.sqrt(hd);
                        max = Math.max(max, scores[t]);
                    }
                    double sum = 0;
                    for (int t = first; t <= pos; t++) {
                        scores[t] = Math.exp(scores[t] - max);
                        sum += scores[t];
                    }
                    for (int t = first; t <= pos; t++) {
                        for (int i = 0; i < hd; i++) {
                            attn[h * hd + i] += scores[t] / sum * valueCache[l][t][kvh * hd + i];
                        }
                    }
                }
                add(x, matVec(p + "self_attn.o_proj", attn));
                xb = rmsNorm(x, get(p + "post_attention_layernorm.weight"));
                double[] gate = matVec(p + "mlp.gate_proj", xb);
                double[] up = matVec(p + "mlp.up_proj", xb);
                for (int i = 0; i < gate.length; i++) {
                    gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
                }
                add(x, matVec(p + "mlp.down_proj", gate));
            }
            double[] xf = rmsNorm(x, get("model.norm.weight"));
            out[pos] = new double[c.vocabSize()];
            for (int vocab = 0; vocab < c.vocabSize(); vocab++) {
                double s = 0;
                for (int i = 0; i < dim; i++) {
                    s += head[vocab * dim + i] * xf[i];
                }
                out[pos][vocab] = s;
            }
        }
        return out;
    }

    private void rope(double[] x, int pos) {
        int hd = c.headDim();
        int half = hd / 2;
        for (int h = 0; h < x.length / hd; h++) {
            for (int i = 0; i < half; i++) {
                double angle = inverseFrequencies != null ? pos * inverseFrequencies[i]
                        : pos / Math.pow(c.ropeTheta(), 2.0 * i / hd);
                int a = h * hd + (c.ropeStyle() == RopeStyle.HALF ? i : 2 * i);
                int b = h * hd + (c.ropeStyle() == RopeStyle.HALF ? i + half : 2 * i + 1);
                double x0 = x[a];
                double x1 = x[b];
                x[a] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
                x[b] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
            }
        }
    }

    private void headNorm(double[] x, double[] weight) {
        int hd = c.headDim();
        for (int h = 0; h < x.length / hd; h++) {
            double[] head = new double[hd];
            System.arraycopy(x, h * hd, head, 0, hd);
            System.arraycopy(rmsNorm(head, weight), 0, x, h * hd, hd);
        }
    }

    private double[] rmsNorm(double[] x, double[] weight) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double scale = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * scale * weight[i];
        }
        return out;
    }

    private double[] matVec(String prefix, double[] x) {
        double[] weight = get(prefix + ".weight");
        int rows = weight.length / x.length;
        double[] out = w.has(prefix + ".bias") ? get(prefix + ".bias") : new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int i = 0; i < x.length; i++) {
                s += weight[r * x.length + i] * x[i];
            }
            out[r] += s;
        }
        return out;
    }

    private static void add(double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
    }

    private double[] get(String name) {
        return d(w.readFloats(name));
    }

    private static double[] d(float[] f) {
        double[] out = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            out[i] = f[i];
        }
        return out;
    }
}
