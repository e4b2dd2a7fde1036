package ai.hfprune.engine.model;

/**
 * How rotary embeddings pair up the dimensions of a head.
 * GGUF (llama.cpp, llama2.c) stores Q and K permuted so that RoPE rotates adjacent pairs (0,1), (2,3), …;
 * Hugging Face checkpoints rotate dimension i with i + head_dim/2 ("rotate_half").
 */
public enum RopeStyle {
    /** Adjacent pairs: GGUF's layout. */
    INTERLEAVED,
    /** First half with second half: Hugging Face's layout. */
    HALF
}
