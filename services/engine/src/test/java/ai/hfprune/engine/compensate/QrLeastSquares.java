package ai.hfprune.engine.compensate;

/**
 * An independent least-squares solver for the tests, in plain Java float64: Householder QR of the stacked system
 * [A; √δ·I]·X = [B; 0], so min ‖A·X − B‖² + δ‖X‖² is solved without ever forming a Gram matrix or an inverse.
 */
final class QrLeastSquares {
    private QrLeastSquares() {
    }

    /**
     * @param a     (m × n) design matrix, row-major
     * @param b     (m × r) right-hand sides, row-major
     * @param delta the ridge δ ≥ 0
     * @return X (n × r), row-major
     */
    static double[] solve(double[] a, int m, int n, double[] b, int r, double delta) {
        int rows = m + n;
        double[][] q = new double[rows][n];   // the stacked design matrix, reduced to R in place
        double[][] rhs = new double[rows][r];
        for (int i = 0; i < m; i++) {
            System.arraycopy(a, i * n, q[i], 0, n);
            System.arraycopy(b, i * r, rhs[i], 0, r);
        }
        for (int j = 0; j < n; j++) {
            q[m + j][j] = Math.sqrt(delta);
        }
        for (int k = 0; k < n; k++) {
            double norm = 0;
            for (int i = k; i < rows; i++) {
                norm += q[i][k] * q[i][k];
            }
            norm = Math.sqrt(norm);
            if (norm == 0) {
                throw new IllegalArgumentException("rank-deficient system");
            }
            double alpha = q[k][k] > 0 ? -norm : norm;
            double[] v = new double[rows];
            for (int i = k; i < rows; i++) {
                v[i] = q[i][k];
            }
            v[k] -= alpha;
            double vv = 0;
            for (int i = k; i < rows; i++) {
                vv += v[i] * v[i];
            }
            for (int j = k; j < n; j++) {
                reflect(q, v, vv, k, rows, j);
            }
            for (int j = 0; j < r; j++) {
                reflect(rhs, v, vv, k, rows, j);
            }
        }
        double[] x = new double[n * r];
        for (int c = 0; c < r; c++) {
            for (int i = n - 1; i >= 0; i--) {
                double s = rhs[i][c];
                for (int j = i + 1; j < n; j++) {
                    s -= q[i][j] * x[j * r + c];
                }
                x[i * r + c] = s / q[i][i];
            }
        }
        return x;
    }

    /** Applies H = I − 2vvᵀ/(vᵀv) to column {@code col} of {@code m}, rows k.. */
    private static void reflect(double[][] m, double[] v, double vv, int k, int rows, int col) {
        double dot = 0;
        for (int i = k; i < rows; i++) {
            dot += v[i] * m[i][col];
        }
        double f = 2 * dot / vv;
        for (int i = k; i < rows; i++) {
            m[i][col] -= f * v[i];
        }
    }
}
