// The try-it page: sends the chosen file to this server's OpenAI-style API and shows the result.
"use strict";
(function () {
  var apiBase = document.body.dataset.apiBase;
  var $ = function (id) { return document.getElementById(id); };
  var chosen = null;            // the File to send
  var downloads = {};           // "srt"/"vtt" -> text, for the file and options last transcribed

  function headers() {
    var key = $("api-key").value.trim();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  function chooseFile(file) {
    chosen = file || null;
    downloads = {};
    $("drop-text").textContent = chosen ? chosen.name + " (" + (chosen.size / 1048576).toFixed(1) + " MB)"
      : "Drop an audio or video file here, or click to choose one";
    $("drop").classList.toggle("chosen", !!chosen);
    refreshButtons();
  }

  function refreshButtons() {
    var ready = !!chosen && $("model").value !== "";
    $("transcribe").disabled = !ready;
    $("download-srt").disabled = !ready;
    $("download-vtt").disabled = !ready;
    var translating = $("task").value === "translations";
    $("stream").disabled = translating;  // OpenAI streams transcriptions only
    if (translating) { $("stream").checked = false; }
  }

  function formFor(format, stream) {
    var form = new FormData();
    form.append("file", chosen, chosen.name);
    form.append("model", $("model").value);
    if ($("language").value && $("task").value === "transcriptions") {
      form.append("language", $("language").value);
    }
    form.append("response_format", format);
    if (stream) { form.append("stream", "true"); }
    return form;
  }

  async function errorText(response) {
    var body = await response.text();
    try { return JSON.parse(body).error.message; } catch (e) { return response.status + " " + body.slice(0, 200); }
  }

  async function post(form) {
    var response = await fetch(apiBase + "/audio/" + $("task").value, { method: "POST", body: form, headers: headers() });
    if (!response.ok) { throw new Error(await errorText(response)); }
    return response;
  }

  // Server-sent events: append each transcript.text.delta as it arrives.
  async function readStream(response, out) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      buffer += decoder.decode(chunk.value, { stream: true });
      var frames = buffer.split("\n\n");
      buffer = frames.pop();
      frames.forEach(function (frame) {
        var data = frame.split("\n").filter(function (l) { return l.indexOf("data: ") === 0; })
          .map(function (l) { return l.slice(6); }).join("\n");
        if (!data || data === "[DONE]") { return; }
        var event = JSON.parse(data);
        if (event.error) { throw new Error(event.error.message); }
        if (event.type === "transcript.text.delta") { out.textContent += event.delta; }
        if (event.type === "transcript.text.done") { out.textContent = event.text; }
      });
    }
  }

  async function transcribe(ev) {
    ev.preventDefault();
    var out = $("transcript");
    var format = $("response-format").value;
    var stream = $("stream").checked && !$("stream").disabled;
    var started = performance.now();
    out.textContent = "";
    $("transcribe").disabled = true;
    setStatus("Working…");
    var timer = setInterval(function () {
      setStatus("Working… " + ((performance.now() - started) / 1000).toFixed(0) + " s");
    }, 1000);
    try {
      // OpenAI streams json and text only: a stream of another format asks for json events.
      var response = await post(formFor(stream && format !== "text" ? "json" : format, stream));
      if (stream) {
        await readStream(response, out);
      } else if (format === "json" || format === "verbose_json") {
        var body = await response.json();
        out.textContent = format === "json" ? body.text : JSON.stringify(body, null, 2);
      } else {
        out.textContent = await response.text();
        if (format === "srt" || format === "vtt") { downloads[format] = out.textContent; }
      }
      var id = response.headers.get("x-request-id");
      setStatus("Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s" + (id ? " · " + id : ""));
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      clearInterval(timer);
      refreshButtons();
    }
  }

  async function download(format) {
    try {
      if (!downloads[format]) {
        setStatus("Preparing ." + format + "…");
        downloads[format] = await (await post(formFor(format, false))).text();
        setStatus("");
      }
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([downloads[format]], { type: "text/plain;charset=utf-8" }));
      link.download = chosen.name.replace(/\.[^.]*$/, "") + "." + format;
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    } catch (err) {
      setStatus(err.message, true);
    }
  }

  async function loadModels() {
    try {
      var response = await fetch(apiBase + "/models", { headers: headers() });
      if (!response.ok) { throw new Error(await errorText(response)); }
      var models = (await response.json()).data;
      var select = $("model");
      select.innerHTML = "";
      models.filter(function (m) { return m.kind !== "text-to-speech"; }).forEach(function (m) {
        var option = document.createElement("option");
        option.value = option.textContent = m.id;
        select.appendChild(option);
      });
    } catch (err) {
      setStatus("Cannot list models: " + err.message, true);
    }
    refreshButtons();
  }

  async function loadVoices() {
    var select = $("voice");
    select.innerHTML = "";
    try {
      var response = await fetch(apiBase + "/audio/voices", { headers: headers() });
      if (!response.ok) { throw new Error(await errorText(response)); }
      (await response.json()).data.forEach(function (v) {
        var option = document.createElement("option");
        option.value = v.id;
        option.textContent = v.id + " (" + v.language + ")";
        select.appendChild(option);
      });
      if (!select.options.length) { $("speak-status").textContent = "No voice is installed on this server."; }
    } catch (err) {
      $("speak-status").textContent = "Cannot list voices: " + err.message;
    }
    refreshSpeak();
  }

  function refreshSpeak() {
    $("speak").disabled = $("voice").value === "" || $("speak-text").value.trim() === "";
  }

  async function speak(ev) {
    ev.preventDefault();
    var status = $("speak-status");
    status.className = "";
    status.textContent = "Speaking…";
    $("speak").disabled = true;
    try {
      var body = {
        model: "tts-1", voice: { id: $("voice").value }, input: $("speak-text").value,
        response_format: $("speak-format").value, speed: Number($("speed").value) || 1,
      };
      var response = await fetch(apiBase + "/audio/speech", {
        method: "POST", body: JSON.stringify(body),
        headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      });
      if (!response.ok) { throw new Error(await errorText(response)); }
      var audio = await response.blob();
      var player = $("player");
      if (player.src) { URL.revokeObjectURL(player.src); }
      player.src = URL.createObjectURL(audio);
      player.dataset.bytes = String(audio.size);
      status.textContent = "Done: " + (audio.size / 1024).toFixed(0) + " kB of " + body.response_format;
      player.play().catch(function () { /* autoplay may be blocked: the controls are there */ });
    } catch (err) {
      status.className = "error";
      status.textContent = err.message;
    }
    refreshSpeak();
  }

  $("file").addEventListener("change", function () { chooseFile($("file").files[0]); });
  ["dragenter", "dragover"].forEach(function (name) {
    $("drop").addEventListener(name, function (ev) { ev.preventDefault(); $("drop").classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    $("drop").addEventListener(name, function () { $("drop").classList.remove("over"); });
  });
  $("drop").addEventListener("drop", function (ev) {
    ev.preventDefault();
    if (ev.dataTransfer.files.length) {
      try { $("file").files = ev.dataTransfer.files; } catch (e) { /* older browsers: keep our copy only */ }
      chooseFile(ev.dataTransfer.files[0]);
    }
  });
  ["model", "task"].forEach(function (id) { $(id).addEventListener("change", refreshButtons); });
  $("response-format").addEventListener("change", function () { downloads = {}; });
  $("form").addEventListener("submit", transcribe);
  $("download-srt").addEventListener("click", function () { download("srt"); });
  $("download-vtt").addEventListener("click", function () { download("vtt"); });
  $("speak-text").addEventListener("input", refreshSpeak);
  $("voice").addEventListener("change", refreshSpeak);
  $("speak-form").addEventListener("submit", speak);
  $("api-key").addEventListener("change", function () { loadModels(); loadVoices(); });
  loadModels();
  loadVoices();
})();
