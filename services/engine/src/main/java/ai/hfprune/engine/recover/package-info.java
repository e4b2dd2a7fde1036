/**
 * Recovery by self-distillation: after pruning, train the pruned model towards the dense model's next-token
 * distributions ({@link ai.hfprune.engine.recover.Recovery#run}).
 *
 * <p>Measured on stories260K pruned 20% MLP (uniform, activation scores on 64 windows), 256 training windows of 128
 * tokens of train-head-2MiB.txt, the next 16 held out, KL(dense ‖ pruned) on the first 512 windows of
 * valid-hf-head.txt; one PyTorch thread on the 2-core development machine while another job held one core
 * ({@code RecoveryBenchmark}, a by-hand measurement in the tests). Starting KL 0.548 (perplexity 7.43, dense 4.31):
 * <pre>
 *   full fine-tuning, Adam 1e-3, cosine, 8 windows/step   300 steps: KL 0.147   72 s   500 steps: KL 0.136  110 s
 *   LoRA rank 8 (α = 16), Adam 1e-2, same schedule        300 steps: KL 0.210  103 s   500 steps: KL 0.203  152 s
 * </pre>
 * At 150 steps full fine-tuning reached 0.189 / 0.172 / 0.185 with learning rates 5e-4 / 1e-3 / 2e-3, and LoRA
 * 0.283 / 0.243 / 0.231 / 0.261 with 1e-3 / 3e-3 / 1e-2 / 2e-2 (5e-2 diverged: early stopping returned the input).
 * What counts is the number of tokens trained on: 4 windows/step for 500 steps gave 0.146 in 59 s. LoRA does worse
 * than full fine-tuning on a model this small and is no faster (its extra products cost more than the frozen weights'
 * gradients save); it is for models whose full gradients and Adam state do not fit.
 */
package ai.hfprune.engine.recover;
