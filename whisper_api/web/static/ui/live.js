// Live captions on the try-it page: the microphone, as 24 kHz PCM16, streamed to this server's
// Realtime API (/v1/realtime) over a WebSocket; each utterance's text appears as it is decoded.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var RATE = 24000;
  var live = null;  // {ws, context, stream, node} while capturing

  function status(text, isError) {
    $("live-status").textContent = text;
    $("live-status").className = isError ? "error" : "";
  }

  function socketUrl() {
    var url = new URL(document.body.dataset.apiBase + "/realtime?intent=transcription", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  function base64(samples) {
    var pcm = new Int16Array(samples.length);
    for (var i = 0; i < samples.length; i++) {
      var s = Math.max(-1, Math.min(1, samples[i]));
      pcm[i] = s < 0 ? s * 32768 : s * 32767;
    }
    var bytes = new Uint8Array(pcm.buffer);
    var text = "";
    for (var j = 0; j < bytes.length; j += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(j, j + 0x8000));
    }
    return btoa(text);
  }

  function caption(itemId) {
    var line = document.querySelector('[data-item="' + itemId + '"]');
    if (!line) {
      line = document.createElement("p");
      line.dataset.item = itemId;
      line.className = "pending";
      $("captions").appendChild(line);
    }
    return line;
  }

  function onEvent(event) {
    if (event.type === "input_audio_buffer.speech_started") { caption(event.item_id).textContent = "…"; }
    if (event.type === "conversation.item.input_audio_transcription.delta") {
      var line = caption(event.item_id);
      line.textContent = (line.textContent === "…" ? "" : line.textContent) + event.delta;
    }
    if (event.type === "conversation.item.input_audio_transcription.completed") {
      var done = caption(event.item_id);
      done.textContent = event.transcript;
      done.className = "final";
    }
    if (event.type === "error") { status(event.error.message, true); }
  }

  async function start() {
    var key = $("api-key").value.trim();
    var protocols = ["realtime"].concat(key ? ["openai-insecure-api-key." + key] : []);
    var stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    var context = new AudioContext({ sampleRate: RATE });
    var ws = new WebSocket(socketUrl(), protocols);
    live = { ws: ws, context: context, stream: stream, node: null };
    ws.onmessage = function (message) { onEvent(JSON.parse(message.data)); };
    ws.onclose = function (close) { if (live && live.ws === ws) { stop(); status("closed (" + close.code + ")", close.code !== 1000); } };
    ws.onopen = function () {
      var language = $("language").value || null;
      var model = $("model").value || "whisper-1";
      ws.send(JSON.stringify({ type: "session.update", session: { type: "transcription", audio: { input: {
        format: { type: "audio/pcm", rate: RATE },
        transcription: { model: model, language: language },
        turn_detection: { type: "server_vad", silence_duration_ms: 500 } } } } }));
      var source = context.createMediaStreamSource(stream);
      // ScriptProcessor works from a plain page (an AudioWorklet needs another module file).
      var node = context.createScriptProcessor(2048, 1, 1);
      node.onaudioprocess = function (ev) {
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: "input_audio_buffer.append", audio: base64(ev.inputBuffer.getChannelData(0)) }));
        }
      };
      source.connect(node);
      node.connect(context.destination);
      live.node = node;
      status("listening");
      $("live").textContent = "Stop live captions";
    };
  }

  function stop() {
    var current = live;
    live = null;
    $("live").textContent = "Start live captions";
    if (!current) { return; }
    if (current.node) { current.node.disconnect(); }
    current.stream.getTracks().forEach(function (t) { t.stop(); });
    current.context.close();
    if (current.ws.readyState <= WebSocket.OPEN) { current.ws.close(1000); }
    status("stopped");
  }

  $("live").addEventListener("click", function () {
    if (live) { stop(); return; }
    start().catch(function (err) { stop(); status("Cannot start: " + err.message, true); });
  });
})();
