// Drives firebase/ai's LiveSession through one conversation against the emulator and prints
// what receive() yielded as one JSON line. Input (audio frames, a JPEG) comes from the file
// named by INPUT_JSON so the Python test can compare it with the emulator's recording.
import { readFileSync } from 'node:fs';
import { rewritten } from './websocket-shim.mjs';
import { initializeApp } from 'firebase/app';
import {
  getAI, getLiveGenerativeModel, GoogleAIBackend, ResponseModality,
} from 'firebase/ai';

const input = JSON.parse(readFileSync(process.env.INPUT_JSON, 'utf8'));
const app = initializeApp({ apiKey: 'fake-key', projectId: 'demo-project', appId: '1:1:web:1' });
const ai = getAI(app, { backend: new GoogleAIBackend() });
const model = getLiveGenerativeModel(ai, {
  model: 'gemini-live-2.5-flash-preview',
  generationConfig: {
    responseModalities: [ResponseModality.AUDIO],
    inputAudioTranscription: {},
    outputAudioTranscription: {},
  },
  tools: [{ functionDeclarations: [{
    name: 'set_lamp',
    description: 'Switch the lamp',
    parameters: { type: 'object', properties: { on: { type: 'boolean' } } },
  }] }],
});

const summary = { turns: [], urls: rewritten };
const session = await model.connect();
// One receive() iterator for the whole session: leaving a `for await` would end delivery.
const messages = session.receive();

async function turn(onToolCall) {
  const t = { types: [], input: '', output: '', audioBytes: 0, mimeTypes: [], calls: [] };
  for (;;) {
    const { value, done } = await messages.next();
    if (done) { t.ended = true; break; }
    t.types.push(value.type);
    if (value.type === 'toolCall') {
      t.calls.push(...value.functionCalls);
      await onToolCall(value.functionCalls);
      continue;
    }
    if (value.type !== 'serverContent') continue;
    if (value.inputTranscription) t.input += value.inputTranscription.text ?? '';
    if (value.outputTranscription) t.output += value.outputTranscription.text ?? '';
    for (const part of value.modelTurn?.parts ?? []) {
      if (part.inlineData) {
        t.audioBytes += Buffer.from(part.inlineData.data, 'base64').length;
        t.mimeTypes.push(part.inlineData.mimeType);
      }
    }
    if (value.turnComplete) break;
  }
  summary.turns.push(t);
}

await session.sendVideoRealtime({ mimeType: 'image/jpeg', data: input.jpeg });
for (const frame of input.audio) {
  await session.sendAudioRealtime({ mimeType: 'audio/pcm', data: frame });
}
await turn(async (calls) => {
  await session.sendFunctionResponses(
    calls.map((c) => ({ id: c.id, name: c.name, response: { ok: true } })),
  );
});
await session.sendTextRealtime('what colour is the lamp?');
await turn(async () => {});
summary.closedBefore = session.isClosed;
await session.close();
summary.closedAfter = session.isClosed;
process.stdout.write(JSON.stringify(summary) + '\n');
process.exit(0);
