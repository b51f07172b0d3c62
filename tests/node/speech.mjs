// Drives whisper_api's text to speech with the official openai npm package and writes what the
// SDK returned into <out_dir> (checked by tests/test_node_sdk.py with PyAV).
// Usage: node speech.mjs <base_url> <out_dir> <wav file for the chat question>
import fs from "node:fs";
import path from "node:path";
import OpenAI from "openai";

const [baseURL, outDir, wavPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-local", maxRetries: 0 });
const input = "The lighthouse keeper counted seven ships before the storm arrived.";

const formats = {};
for (const fmt of ["mp3", "opus", "aac", "flac", "wav", "pcm"]) {
  const response = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input, response_format: fmt });
  fs.writeFileSync(path.join(outDir, `speech.${fmt}`), Buffer.from(await response.arrayBuffer()));
  formats[fmt] = response.headers.get("content-type");
}

// Streamed: the body is read as it arrives.
const long = Array.from({ length: 6 }, (_, n) => `Sentence ${n} is read aloud while the next is made.`).join(" ");
const streamed = await client.audio.speech.create({ model: "gpt-4o-mini-tts", voice: "nova", input: long, response_format: "mp3" });
let bodyChunks = 0;
for await (const _chunk of streamed.body) bodyChunks += 1;

const sse = await client.audio.speech.create({ model: "gpt-4o-mini-tts", voice: "coral", input, response_format: "pcm", stream_format: "sse" });
const events = (await sse.text()).split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));

const bad = [];
for (const change of [{ input: "" }, { speed: 9 }, { voice: "nobody" }, { response_format: "ogg" }]) {
  try {
    await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "Hello.", ...change });
    bad.push({ status: 200 });
  } catch (err) {
    bad.push({ status: err.status, param: err.param });
  }
}

// A spoken chat answer, streamed. openai 6.x's helper keeps only the last delta.audio object (v7
// merges them), so the pieces are joined from the chunks, as OpenAI's own examples do.
const chat = client.chat.completions.stream({
  model: "gpt-4o-audio-preview",
  modalities: ["text", "audio"],
  audio: { voice: "alloy", format: "pcm16" },
  messages: [{ role: "user", content: [
    { type: "input_audio", input_audio: { data: fs.readFileSync(wavPath).toString("base64"), format: "wav" } },
  ] }],
});
const audio = { id: null, transcript: "", data: "" };
for await (const chunk of chat) {
  const part = chunk.choices[0]?.delta?.audio;
  if (part?.id) audio.id = part.id;
  audio.transcript += part?.transcript ?? "";
  audio.data += part?.data ?? "";
}
const final = await chat.finalChatCompletion();
fs.writeFileSync(path.join(outDir, "chat.pcm"), Buffer.from(audio.data, "base64"));

console.log(JSON.stringify({
  formats,
  bodyChunks,
  sse: { types: events.map((e) => e.type), audio: events.filter((e) => e.audio).map((e) => e.audio).join(""), usage: events.at(-1).usage },
  bad,
  chat: { id: audio.id, transcript: audio.transcript, finish_reason: final.choices[0].finish_reason, content: final.choices[0].message.content },
}));
