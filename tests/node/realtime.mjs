// Live transcription through the official openai npm package's Realtime WebSocket client
// (OpenAIRealtimeWS, which always connects with wss://). Streams raw 24 kHz PCM16 in 40 ms pieces,
// paced as it is spoken, with server VAD; prints the transcripts and event types as JSON.
// Usage: node realtime.mjs <baseURL> <pcm16 file> <utterances>
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';

const [baseURL, pcmPath, wanted] = process.argv.slice(2);
const pcm = readFileSync(pcmPath);
const client = new OpenAI({ baseURL, apiKey: 'sk-local' });
const rt = new OpenAIRealtimeWS({ model: 'whisper-1' }, client);
const types = [];
const transcripts = [];
const timer = setTimeout(() => fail(new Error('timed out')), 120_000);

function fail(err) {
  console.error(err?.message ?? err);
  process.exit(1);
}

rt.on('error', fail);
rt.on('event', (event) => types.push(event.type));
rt.on('conversation.item.input_audio_transcription.completed', (event) => {
  transcripts.push(event.transcript);
  if (transcripts.length >= Number(wanted)) {
    clearTimeout(timer);
    rt.close();
    console.log(JSON.stringify({ transcripts, types }));
  }
});
rt.socket.on('open', async () => {
  rt.send({
    type: 'session.update',
    session: {
      type: 'transcription',
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          transcription: { model: 'whisper-1', language: 'en' },
          turn_detection: { type: 'server_vad', silence_duration_ms: 1200 },
        },
      },
    },
  });
  const step = 2 * 24000 * 0.04;
  const started = Date.now();
  for (let n = 0, offset = 0; offset < pcm.length; n++, offset += step) {
    rt.send({ type: 'input_audio_buffer.append', audio: pcm.subarray(offset, offset + step).toString('base64') });
    const due = started + (n + 1) * 40;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
  }
});
