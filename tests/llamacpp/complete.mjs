// Greedy continuation of a prompt by llama.cpp (node-llama-cpp's prebuilt binary), as `hfprune generate` does it:
// BOS + the prompt's tokens, then the most likely token until EOS or N tokens, with a float32 KV cache.
//
//   node tests/llamacpp/complete.mjs pruned/model.gguf "Once upon a time" 60
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, prompt, n = "60"] = process.argv.slice(2);
if (!modelPath || prompt === undefined) {
    console.error("usage: node complete.mjs MODEL.gguf PROMPT [MAX_NEW_TOKENS]");
    process.exit(2);
}
// One thread: llama.cpp's threads spin while they wait, which on a busy machine costs far more than it saves
// for a model this small (LLAMACPP_THREADS to change it).
const llama = await getLlama({gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error,
    maxThreads: Number(process.env.LLAMACPP_THREADS ?? 1)});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const maxNewTokens = Number(n);
const ids = [model.tokens.bos, ...model.tokenize(prompt)].filter(t => t != null);
const context = await model.createContext({contextSize: ids.length + maxNewTokens + 1, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
const sequence = context.getSequence();
const top = {generateNext: {logits: {filter: {tokens: [], includeTop: 1}}}};
let input = ids.map((t, i) => i === ids.length - 1 ? [t, top] : t);
const generated = [];
while (generated.length < maxNewTokens) {
    const out = await sequence.controlledEvaluate(input);
    const [next] = out[input.length - 1].next.logits.keys(); // the largest logit comes first
    if (next === model.tokens.eos) break;
    generated.push(next);
    input = [[next, top]];
}
console.log(prompt + model.detokenize(generated, false, ids));
await context.dispose();
await model.dispose();
await llama.dispose();
