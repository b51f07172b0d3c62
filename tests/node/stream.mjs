// Streams a transcription and an audio chat completion from whisper_api with the official
// openai npm package, and prints what the SDK yielded as JSON (checked by tests/test_node_sdk.py).
// Usage: node stream.mjs <base_url> <audio file for transcription> <wav file for chat>
import fs from "node:fs";
import OpenAI from "openai";

const [baseURL, audioPath, wavPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-local", maxRetries: 0 });

// A streamed upload (fs.createReadStream): node sends it chunked, without Content-Length.
const transcription = await client.audio.transcriptions.create({
  model: "whisper-1",
  file: fs.createReadStream(audioPath),
  stream: true,
});
const events = [];
for await (const event of transcription) events.push(event);

// The stream helper: finalChatCompletion() throws unless a chunk carries finish_reason.
const chat = client.chat.completions.stream({
  model: "gpt-4o-audio-preview",
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "What is in this recording?" },
        { type: "input_audio", input_audio: { data: fs.readFileSync(wavPath).toString("base64"), format: "wav" } },
      ],
    },
  ],
  stream_options: { include_usage: true },
});
let chunks = 0;
for await (const _chunk of chat) chunks += 1;
const final = await chat.finalChatCompletion();

console.log(JSON.stringify({
  transcription: { types: events.map((e) => e.type), text: events.at(-1)?.text ?? null },
  chat: {
    chunks,
    content: final.choices[0].message.content,
    finish_reason: final.choices[0].finish_reason,
    usage: final.usage ?? null,
  },
}));
