// The demo page's behaviour: get an app-user JWT, ask the real token endpoint for a
// participant token exactly as a frontend would, decode what came back, and let the
// real IVS web broadcast SDK construct a Stage from it. No framework, no build step.
// Everything shown is set with textContent: claims and attributes are user data.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  let config = null;
  let countdown = null;
  let sdkState = "loading"; // loading | ready | absent | failed
  let sdkMissing = ""; // why there is no SDK verdict, when there is none
  let lastIssued = null; // the latest token response, for an SDK that loads after it

  // ------------------------------------------------------------------ helpers

  function show(id, text) {
    $(id).textContent = text;
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function setOutcome(id, kind, text) {
    const el = $(id);
    el.className = "outcome " + kind;
    el.textContent = text;
  }

  // base64url -> UTF-8 text (the SDK itself uses atob, which is why the service keeps
  // claims ASCII-only; TextDecoder here shows exactly what the bytes say).
  function base64UrlText(part) {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  }

  function decodeJwt(token) {
    const parts = token.split(".");
    if (parts.length !== 3) {
      throw new Error("not a JWT (" + parts.length + " parts instead of 3): nothing to decode");
    }
    return { header: JSON.parse(base64UrlText(parts[0])), claims: JSON.parse(base64UrlText(parts[1])) };
  }

  function serviceBase() {
    const typed = $("service-url").value.trim().replace(/\/+$/, "");
    return typed || window.location.origin;
  }

  function describeError(err) {
    if (!err) return "unknown error";
    const lines = [];
    if (err.name) lines.push("name:    " + err.name);
    if (err.code !== undefined) lines.push("code:    " + err.code);
    if (err.message) lines.push("message: " + err.message);
    if (err.details) lines.push("details: " + err.details);
    return lines.length ? lines.join("\n") : String(err);
  }

  // ------------------------------------------------------------------ the SDK

  function loadSdk() {
    if (!config.sdk.available) {
      sdkState = "absent";
      show("sdk-status", "IVS web SDK: not installed (" + config.sdk.hint + ")");
      $("sdk-status").className = "badge warn";
      sdkMissing = "The SDK is not installed on this server: " + config.sdk.hint +
        ". Everything else on this page works without it.";
      setOutcome("sdk-verdict", "idle", sdkMissing);
      return;
    }
    const script = document.createElement("script");
    script.src = config.sdk.url;
    script.onload = () => {
      if (window.IVSBroadcastClient && window.IVSBroadcastClient.Stage) {
        sdkState = "ready";
        show("sdk-status", "IVS web SDK " + (window.IVSBroadcastClient.__version || "") + " loaded");
        $("sdk-status").className = "badge ok";
        if (lastIssued) showSdkVerdict(lastIssued.token, lastIssued);
      } else {
        sdkFailed("the script loaded but defines no IVSBroadcastClient.Stage");
      }
    };
    script.onerror = () => sdkFailed("the script " + config.sdk.url + " did not load");
    document.head.appendChild(script);
  }

  function sdkFailed(why) {
    sdkState = "failed";
    show("sdk-status", "IVS web SDK: " + why);
    $("sdk-status").className = "badge warn";
    sdkMissing = "No SDK verdict: " + why + ".";
    setOutcome("sdk-verdict", "idle", sdkMissing);
  }

  // What the SDK reads when constructing a Stage. The Stage exposes no public accessor
  // for its token before join(); `stage.token` is the SDK's own parsed view (private in
  // its TypeScript types), so a future SDK may move it: then only the verdict is shown.
  function sdkVerdict(token) {
    const client = window.IVSBroadcastClient;
    const strategy = {
      stageStreamsToPublish: () => [],
      shouldPublishParticipant: () => false,
      shouldSubscribeToParticipant: () => client.SubscribeType.NONE,
    };
    let stage;
    try {
      stage = new client.Stage(token, strategy);
    } catch (err) {
      return { accepted: false, error: describeError(err) };
    }
    const read = stage.token || {};
    const claims = read.claims || {};
    return {
      accepted: true,
      participantId: read.participantID,
      stageArn: read.stageARN,
      userId: read.userID,
      capabilities: claims.capabilities,
      expirationTime: read.expirationTime,
    };
  }

  function showSdkVerdict(token, issued) {
    $("sdk-read").hidden = true;
    $("sdk-error").hidden = true;
    if (sdkState !== "ready") {
      setOutcome("sdk-verdict", "idle", sdkState === "loading" ? "The SDK is still loading." : sdkMissing);
      return;
    }
    const verdict = sdkVerdict(token);
    if (!verdict.accepted) {
      setOutcome("sdk-verdict", "bad", "The SDK rejected this token: new Stage(token) threw.");
      show("sdk-error", verdict.error);
      $("sdk-error").hidden = false;
      return;
    }
    setOutcome("sdk-verdict", "good", "The SDK accepted this token: new Stage(token) succeeded.");
    show("sdk-participant-id", verdict.participantId || "(not exposed by this SDK version)");
    show("sdk-stage-arn", verdict.stageArn || "–");
    show("sdk-user-id", verdict.userId || "(none)");
    const caps = verdict.capabilities || {};
    show("sdk-capabilities",
      "publish: " + (caps.allow_publish ? "yes" : "no") + ", subscribe: " + (caps.allow_subscribe ? "yes" : "no"));
    show("sdk-expires", verdict.expirationTime
      ? new Date(verdict.expirationTime * 1000).toISOString() : "(no exp: the SDK treats it as expired)");
    const match = $("sdk-match");
    if (verdict.participantId && verdict.participantId === issued.participantId) {
      match.textContent = "✓ the participant ID the service returned";
      match.className = "good-text";
    } else {
      match.textContent = "✗ the service returned " + issued.participantId;
      match.className = "bad-text";
    }
    $("sdk-read").hidden = false;
  }

  // ------------------------------------------------------------------ results

  function resetResult() {
    $("problem").hidden = true;
    show("response-body", "–");
    show("token-header", "–");
    show("token-claims", "–");
    $("expiry").className = "expiry";
    show("expiry", "–");
    if (countdown) clearInterval(countdown);
    countdown = null;
    $("sdk-read").hidden = true;
    $("sdk-error").hidden = true;
    setOutcome("sdk-verdict", "idle", sdkMissing || "No token yet.");
  }

  function showProblem(step, response, body) {
    const status = response.status + " " + (body && body.title ? body.title : response.statusText);
    setOutcome("outcome", "bad", step + " refused: " + status + (body && body.detail ? ": " + body.detail : ""));
    show("problem-status", String(response.status));
    show("problem-title", (body && body.title) || response.statusText || "–");
    show("problem-detail", (body && body.detail) || "–");
    show("problem-rule", (body && body.rule) || "–");
    const retry = response.headers.get("Retry-After");
    show("problem-retry", retry ? retry + " s" : "–");
    show("problem-request-id", (body && body.requestId) || response.headers.get("X-Request-Id") || "–");
    $("problem").hidden = false;
    show("response-body", body ? pretty(body) : "(no JSON body)");
    if (sdkState === "ready") setOutcome("sdk-verdict", "idle", "No token to give the SDK.");
  }

  function startCountdown(exp) {
    const tick = () => {
      const left = Math.floor(exp - Date.now() / 1000);
      if (left <= 0) {
        setOutcome("expiry", "bad", "Expired at " + new Date(exp * 1000).toISOString() +
          ": the SDK refuses to join with it");
        clearInterval(countdown);
        return;
      }
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      const clock = (h ? h + ":" : "") + String(m).padStart(h ? 2 : 1, "0") + ":" + String(s).padStart(2, "0");
      setOutcome("expiry", "good", "Expires in " + clock + " (at " + new Date(exp * 1000).toISOString() + ")");
    };
    tick();
    countdown = setInterval(tick, 1000);
  }

  function showToken(issued) {
    show("response-body", pretty(issued));
    let decoded;
    try {
      decoded = decodeJwt(issued.token);
    } catch (err) {
      show("token-header", String(err.message || err));
      show("token-claims", "–");
      return;
    }
    show("token-header", pretty(decoded.header));
    show("token-claims", pretty(decoded.claims));
    if (typeof decoded.claims.exp === "number") startCountdown(decoded.claims.exp);
  }

  // ------------------------------------------------------------------ requests

  async function readJson(response) {
    try {
      return await response.json();
    } catch (err) {
      return null;
    }
  }

  async function appUserJwt() {
    if ($("auth-paste").checked) return { jwt: $("user-jwt").value.trim() };
    const roles = $("roles").value.split(",").map((r) => r.trim()).filter(Boolean);
    const response = await fetch("/demo/user-token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sub: $("user-id").value.trim(), roles: roles }),
    });
    const body = await readJson(response);
    if (!response.ok) {
      showProblem("Demo user JWT", response, body);
      return null;
    }
    return { jwt: body.token };
  }

  function tokenRequestBody() {
    const body = { stageArn: $("stage-arn").value.trim() };
    const caps = [];
    if ($("cap-publish").checked) caps.push("PUBLISH");
    if ($("cap-subscribe").checked) caps.push("SUBSCRIBE");
    if (caps.length) body.capabilities = caps;
    const duration = $("duration").value.trim();
    if (duration) body.durationMinutes = Number(duration);
    const displayName = $("display-name").value.trim();
    if (displayName) body.attributes = { displayName: displayName };
    return body;
  }

  async function requestToken() {
    const button = $("request-token");
    button.disabled = true;
    resetResult();
    lastIssued = null;
    setOutcome("outcome", "idle", "Requesting…");
    try {
      const user = await appUserJwt();
      if (user === null) return;
      const url = serviceBase() + config.tokenEndpoint;
      const body = tokenRequestBody();
      const headers = { "Content-Type": "application/json" };
      if (user.jwt) headers.Authorization = "Bearer " + user.jwt;
      show("request-shown",
        "POST " + url + "\n" +
        (user.jwt ? "Authorization: Bearer <app-user JWT>\n" : "(no Authorization header)\n") +
        "Content-Type: application/json\n\n" + pretty(body));
      let response;
      try {
        response = await fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body) });
      } catch (err) {
        setOutcome("outcome", "bad", "The request did not reach the service (" + err.message +
          "). From another origin, the service must list this page's origin (" +
          window.location.origin + ") in TOKEN_SERVICE_CORS_ORIGINS.");
        return;
      }
      const answer = await readJson(response);
      if (response.status !== 201 || !answer || !answer.token) {
        showProblem("Token request", response, answer);
        return;
      }
      setOutcome("outcome", "good", "201 Created: participant " + answer.participantId +
        " for user " + answer.userId + " (" + answer.capabilities.join(", ") + ")");
      lastIssued = answer;
      showToken(answer);
      showSdkVerdict(answer.token, answer);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ set-up

  function applyPreset(preset) {
    $("auth-mint").checked = true;
    $("user-id").value = preset.sub;
    $("roles").value = preset.roles.join(", ");
    $("cap-publish").checked = preset.capabilities.includes("PUBLISH");
    $("cap-subscribe").checked = preset.capabilities.includes("SUBSCRIBE");
    syncAuth();
  }

  function syncAuth() {
    const mint = $("auth-mint").checked;
    $("mint-fields").classList.toggle("disabled", !mint);
    $("user-id").disabled = !mint;
    $("roles").disabled = !mint;
    $("user-jwt").disabled = mint;
  }

  async function start() {
    const response = await fetch("/demo/config.json");
    config = await response.json();
    $("dev-badge").hidden = !config.dev;
    if (config.stageArn) $("stage-arn").value = config.stageArn;
    $("service-url").placeholder = window.location.origin;
    if (!config.mintUserTokens) {
      // Only `serve --dev` signs demo users' JWTs; elsewhere the developer brings one.
      $("auth-mint").disabled = true;
      $("auth-paste").checked = true;
      $("auth-mint").parentElement.classList.add("disabled");
    } else {
      for (const preset of config.presets) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "preset";
        button.textContent = preset.label;
        button.title = preset.sub + (preset.roles.length ? " (" + preset.roles.join(", ") + ")" : " (no roles)") +
          " asking for " + preset.capabilities.join(" + ");
        button.addEventListener("click", () => applyPreset(preset));
        $("presets").appendChild(button);
      }
    }
    $("auth-mint").addEventListener("change", syncAuth);
    $("auth-paste").addEventListener("change", syncAuth);
    $("request-token").addEventListener("click", requestToken);
    syncAuth();
    loadSdk();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((err) => setOutcome("outcome", "bad", "The demo could not start: " + err.message));
  });
})();
