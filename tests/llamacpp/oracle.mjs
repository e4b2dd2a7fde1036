// llama.cpp as an independent oracle for hfprune's GGUF export: loads a GGUF with node-llama-cpp's prebuilt
// llama.cpp, scores token windows and decodes greedily, and prints the numbers as JSON on stdout.
//
//   node oracle.mjs request.json
//
// request: {"model": "model.gguf", "threads": 1,
//           "windows": [[ids…], …],                   log-probabilities of each window's next tokens
//           "prompt": [ids…], "maxNewTokens": N,       greedy continuation of the prompt
//           "tokenize": ["text", …]}                   llama.cpp's own tokenizer (no BOS, special tokens as text)
// answer:  {"windows": [{"logprobs": [N-1 numbers], "argmax": [N-1 ids]}, …], "greedy": [ids…],
//           "tokens": [[ids…], …]}
//
// Token ids go in, not text: tokenizers differ on the edges, and this compares the model, not the tokenizer
// (the "tokenize" request is there to compare tokenizers on purpose).
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel, LlamaModel} from "node-llama-cpp";

const request = JSON.parse(readFileSync(process.argv[2], "utf8"));
const windows = request.windows ?? [];
const prompt = request.prompt ?? [];
const maxNewTokens = request.maxNewTokens ?? 0;

// No GPU, no build, no download: the prebuilt CPU binary of @node-llama-cpp/linux-x64 or nothing.
const llama = await getLlama({gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
    maxThreads: request.threads ?? 1, logLevel: LlamaLogLevel[process.env.ORACLE_LOG ?? "error"], progressLogs: false});
// Once loaded, node-llama-cpp checks that "some test text here" survives tokenize + detokenize; llama.cpp's SPM
// tokenizer throws an uncaught C++ exception (the process aborts) on a character that has neither a piece nor a
// byte-fallback token, which is the case in babyllama-tok105's 105-character vocabulary. Ids are passed here, so
// the self-check is skipped: only the GGUF file's own warnings are kept.
LlamaModel.prototype.getWarnings = function () {
    return this._fileInsights.getWarnings(this._modelPath);
};
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
const vocabularySize = model.fileInsights.vocabularySize ?? model.fileInfo.metadata.tokenizer.ggml.tokens.length;

function logSoftmax(logits) {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    for (const v of logits) sum += Math.exp(v - max);
    const logZ = max + Math.log(sum);
    return i => logits[i] - logZ;
}

function argmax(logits) {
    let best = 0; // the first of equal maxima, like torch.argmax
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
}

/** node-llama-cpp gives logits as a Map from token id to logit, ordered by logit: back to an array by id. */
function dense(map) {
    const row = new Float64Array(vocabularySize).fill(-Infinity);
    for (const [token, logit] of map) row[token] = logit;
    return row;
}

/** Raw logits after each of `tokens`, appended to what the sequence holds. */
async function logitsAfter(tokens, wanted) {
    const input = tokens.map((t, i) => wanted(i) ? [t, {generateNext: {logits: true}}] : t);
    const out = await sequence.controlledEvaluate(input);
    return tokens.map((_, i) => wanted(i) ? dense(out[i].next.logits) : null);
}

const answer = {windows: [], greedy: [], tokens: []};
for (const w of windows) {
    await sequence.clearHistory();
    const rows = await logitsAfter(w, i => i < w.length - 1);
    const logprobs = [];
    const best = [];
    for (let i = 0; i < w.length - 1; i++) {
        logprobs.push(logSoftmax(rows[i])(w[i + 1]));
        best.push(argmax(rows[i]));
    }
    answer.windows.push({logprobs, argmax: best});
}
if (maxNewTokens > 0) {
    await sequence.clearHistory();
    let rows = await logitsAfter(prompt, i => i === prompt.length - 1);
    let next = argmax(rows[prompt.length - 1]);
    for (let n = 0; n < maxNewTokens; n++) {
        answer.greedy.push(next);
        if (n === maxNewTokens - 1) break;
        rows = await logitsAfter([next], () => true);
        next = argmax(rows[0]);
    }
}
for (const text of request.tokenize ?? []) {
    answer.tokens.push(Array.from(model.tokenize(text, true)));
}
process.stdout.write(JSON.stringify(answer) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
