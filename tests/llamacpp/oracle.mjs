// llama.cpp as an independent oracle for hfprune's GGUF export: loads GGUF files with node-llama-cpp's prebuilt
// llama.cpp, scores token windows and decodes greedily, and answers with the numbers as JSON.
//
//   echo '{"model": "pruned/model.gguf", "prompt": [1, 403, 407, 261, 378], "maxNewTokens": 20}' | node oracle.mjs
//
// One request per line on stdin, one answer per line on stdout, in order (one process serves many models: starting
// node-llama-cpp costs seconds, a small model loads in milliseconds).
// request: {"model": "model.gguf", "threads": 1,
//           "windows": [[ids…], …],                   log-probabilities of each window's next tokens
//           "prompt": [ids…], "maxNewTokens": N,       greedy continuation of the prompt
//           "tokenize": ["text", …]}                   llama.cpp's own tokenizer (no BOS, special tokens as text)
// answer:  {"windows": [{"logprobs": [N-1 numbers], "argmax": [N-1 ids]}, …], "greedy": [ids…],
//           "tokens": [[ids…], …]}, or {"error": "message"}
//
// Token ids go in, not text: tokenizers differ on the edges, and this compares the model, not the tokenizer
// (the "tokenize" request is there to compare tokenizers on purpose).
import {createInterface} from "node:readline";
import {getLlama, LlamaLogLevel, LlamaModel} from "node-llama-cpp";

// No GPU, no build, no download: the prebuilt CPU binary of @node-llama-cpp/linux-x64 or nothing. One thread by
// default: llama.cpp's threads spin while they wait, which on a busy machine costs far more than it saves for models
// this small (4 threads on 2 loaded cores took minutes for what one thread does in a second).
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
    maxThreads: Number(process.env.LLAMACPP_THREADS ?? 1), logLevel: LlamaLogLevel[process.env.ORACLE_LOG ?? "error"],
    progressLogs: false});
// Once loaded, node-llama-cpp checks that "some test text here" survives tokenize + detokenize; llama.cpp's SPM
// tokenizer throws an uncaught C++ exception (the process aborts) on a character that has neither a piece nor a
// byte-fallback token, which is the case in babyllama-tok105's 105-character vocabulary. Ids are passed here, so
// the self-check is skipped: only the GGUF file's own warnings are kept.
LlamaModel.prototype.getWarnings = function () {
    return this._fileInsights.getWarnings(this._modelPath);
};

async function answer(request) {
    const windows = request.windows ?? [];
    const prompt = request.prompt ?? [];
    const maxNewTokens = request.maxNewTokens ?? 0;
    const model = await llama.loadModel({modelPath: request.model, gpuLayers: 0, useMmap: false,
        defaultContextFlashAttention: false});
    const longest = Math.max(1, ...windows.map(w => w.length), prompt.length + maxNewTokens);
    // One cell more than the longest row: with exactly as many cells, node-llama-cpp shifts the context
    // silently and the last positions would see a truncated history. The KV cache is float32: its default, F16,
    // alone moves log-probabilities by up to 0.05.
    const context = await model.createContext({contextSize: longest + 1, batchSize: longest + 1, sequences: 1,
        flashAttention: false, threads: request.threads ?? 1,
        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
    const sequence = context.getSequence();
    try {
        const out = {windows: [], greedy: [], tokens: []};
        for (const w of windows) {
            await sequence.clearHistory();
            const rows = await evaluate(sequence, w, i => i < w.length - 1 ? w[i + 1] : undefined);
            rows.pop();
            out.windows.push({logprobs: rows.map(r => r.logprob), argmax: rows.map(r => r.argmax)});
        }
        if (maxNewTokens > 0) {
            await sequence.clearHistory();
            let rows = await evaluate(sequence, prompt, i => i === prompt.length - 1 ? null : undefined);
            for (let n = 0; n < maxNewTokens; n++) {
                const next = rows[rows.length - 1].argmax; // greedy
                out.greedy.push(next);
                if (n === maxNewTokens - 1) break;
                rows = await evaluate(sequence, [next], () => null);
            }
        }
        for (const text of request.tokenize ?? []) {
            out.tokens.push(Array.from(model.tokenize(text, true)));
        }
        return out;
    } finally {
        await context.dispose();
        await model.dispose();
    }
}

/**
 * After each of `tokens` (appended to what the sequence holds) where `target(i)` is not undefined: llama.cpp's
 * largest logit's token and the log-probability of token target(i) (null: none), from raw float32 logits. Only the
 * top logit, the target's and the softmax normalizer (sum of exp(logit - max), summed in llama.cpp's addon) cross
 * into JavaScript, not a whole vocabulary per position. (The filter's includeMax is not used: in 3.22.1 it adds the
 * maximum only when it is already in the list.)
 */
async function evaluate(sequence, tokens, target) {
    const input = tokens.map((t, i) => target(i) === undefined ? t : [t, {generateNext: {
        logits: {filter: {tokens: target(i) === null ? [] : [target(i)], includeTop: 1}}, totalLogitWeight: true}}]);
    const out = await sequence.controlledEvaluate(input);
    return tokens.map((_, i) => {
        if (target(i) === undefined) return null;
        const {logits, totalLogitWeight} = out[i].next;
        const [best, max] = logits.entries().next().value; // the top logit comes first
        const logZ = max + Math.log(totalLogitWeight);
        return {argmax: best, logprob: target(i) === null ? null : logits.get(target(i)) - logZ};
    });
}

for await (const line of createInterface({input: process.stdin, crlfDelay: Infinity})) {
    if (line.trim() === "") continue;
    let reply;
    try {
        reply = await answer(JSON.parse(line));
    } catch (e) {
        reply = {error: String(e?.stack ?? e)};
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
}
await llama.dispose();
