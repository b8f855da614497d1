// The demo page's behaviour: get an app-user JWT, ask the real token endpoint for a
// participant token with the project's web client (clients/web, served as
// ivs-token-client.js), exactly as a frontend would, decode what came back, refresh it
// through the exchange route, and let the real IVS web broadcast SDK construct a Stage
// from each token. No framework, no build step of its own (a module script).
// Everything shown is set with textContent: claims and attributes are user data.
import { createTokenSource, keepStageCurrent, TokenServiceError } from "/demo/assets/ivs-token-client.js";

(function () {
  const $ = (id) => document.getElementById(id);
  let config = null;
  let countdown = null;
  let sdkState = "loading"; // loading | ready | absent | failed
  let sdkMissing = ""; // why there is no SDK verdict, when there is none
  let lastIssued = null; // the latest token response, for an SDK that loads after it
  let source = null; // the token source of the latest request: refreshes, then is closed

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

  // A refusal, as the client reports it: a TokenServiceError with the problem's fields.
  function showProblem(step, error) {
    setOutcome("outcome", "bad", step + " refused: " + error.message);
    show("problem-status", String(error.status));
    show("problem-title", error.title || "–");
    show("problem-detail", error.detail || "–");
    show("problem-rule", error.rule || "–");
    show("problem-retry", error.retryAfterSeconds !== undefined ? error.retryAfterSeconds + " s" : "–");
    show("problem-request-id", error.requestId || "–");
    $("problem").hidden = false;
    const problem = { type: error.type, title: error.title, status: error.status, detail: error.detail };
    if (error.errors.length) problem.errors = error.errors;
    if (error.rule) problem.rule = error.rule;
    if (error.requestId) problem.requestId = error.requestId;
    show("response-body", pretty(problem));
    if (sdkState === "ready") setOutcome("sdk-verdict", "idle", "No token to give the SDK.");
  }

  function showFailure(step, err) {
    if (err instanceof TokenServiceError) {
      showProblem(step, err);
    } else if (err instanceof TypeError) {
      // fetch's own failure: no answer at all, most often CORS from another origin.
      setOutcome("outcome", "bad", "The request did not reach the service (" + err.message +
        "). From another origin, the service must list this page's origin (" +
        window.location.origin + ") in TOKEN_SERVICE_CORS_ORIGINS.");
    } else {
      setOutcome("outcome", "bad", step + " failed: " + (err && err.message ? err.message : String(err)));
    }
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

  // The development server's demo route (not the service's API): a plain fetch.
  async function appUserJwt() {
    if ($("auth-paste").checked) return { jwt: $("user-jwt").value.trim() };
    const roles = $("roles").value.split(",").map((r) => r.trim()).filter(Boolean);
    const response = await fetch("/demo/user-token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sub: $("user-id").value.trim(), roles: roles }),
    });
    if (!response.ok) {
      // A problem document, as the service's own: the client reads it the same way.
      showProblem("Demo user JWT", await TokenServiceError.fromResponse(response));
      return null;
    }
    return { jwt: (await response.json()).token };
  }

  function tickedCapabilities() {
    const caps = [];
    if ($("cap-publish").checked) caps.push("PUBLISH");
    if ($("cap-subscribe").checked) caps.push("SUBSCRIBE");
    return caps;
  }

  function tokenRequestBody() {
    const body = { stageArn: $("stage-arn").value.trim() };
    const caps = tickedCapabilities();
    if (caps.length) body.capabilities = caps;
    const duration = $("duration").value.trim();
    if (duration) body.durationMinutes = Number(duration);
    const displayName = $("display-name").value.trim();
    if (displayName) body.attributes = { displayName: displayName };
    return body;
  }

  function showIssued(answer, verb) {
    setOutcome("outcome", "good", verb + ": participant " + answer.participantId +
      " for user " + answer.userId + " (" + answer.capabilities.join(", ") + ")");
    lastIssued = answer;
    showToken(answer);
    showSdkVerdict(answer.token, answer);
  }

  // What the page hands each refreshed token to. A frontend passes its joined Stage to
  // keepStageCurrent, which calls stage.exchangeToken(token). This page never joins (no
  // media, no connection to IVS), so it passes this object instead, through the same hook:
  // each refreshed token goes to the SDK for its verdict, as the first one did.
  const sdkVerdictOnExchange = {
    exchangeToken: async (token) => {
      const current = source && source.current();
      if (current && current.token === token) showIssued(current, "200 OK, exchanged");
    },
  };

  async function requestToken() {
    const button = $("request-token");
    button.disabled = true;
    $("refresh-token").disabled = true;
    resetResult();
    lastIssued = null;
    if (source) source.close();
    source = null;
    setOutcome("outcome", "idle", "Requesting…");
    try {
      const user = await appUserJwt();
      if (user === null) return;
      const url = serviceBase() + config.tokenEndpoint;
      const body = tokenRequestBody();
      show("request-shown",
        "POST " + url + "\n" +
        (user.jwt ? "Authorization: Bearer <app-user JWT>\n" : "(no Authorization header)\n") +
        "Content-Type: application/json\n\n" + pretty(body));
      const options = {
        serviceUrl: serviceBase(),
        getAppUserJwt: () => user.jwt,
        stageArn: body.stageArn,
      };
      for (const field of ["capabilities", "durationMinutes", "attributes"]) {
        if (body[field] !== undefined) options[field] = body[field];
      }
      const tokens = createTokenSource(options);
      source = tokens;
      let answer;
      try {
        answer = await tokens.getToken();
      } catch (err) {
        showFailure("Token request", err);
        return;
      }
      showIssued(answer, "201 Created");
      keepStageCurrent(sdkVerdictOnExchange, tokens);
      tokens.onError((err) => showFailure("Background refresh", err));
      $("refresh-token").disabled = false;
    } finally {
      button.disabled = false;
    }
  }

  // Exchange now, with the capabilities ticked: a refresh, or a promotion the policy allows.
  async function refreshToken() {
    if (!source) return;
    const button = $("refresh-token");
    button.disabled = true;
    const caps = tickedCapabilities();
    show("request-shown",
      "POST " + serviceBase() + config.tokenEndpoint + "/" + source.current().participantId + "/exchange\n" +
      "Authorization: Bearer <app-user JWT>\nContent-Type: application/json\n\n" +
      pretty(caps.length ? { capabilities: caps } : {}));
    $("problem").hidden = true;
    try {
      await source.refresh(caps.length ? { capabilities: caps } : {});
    } catch (err) {
      showFailure("Token exchange", err);
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
    $("refresh-token").addEventListener("click", refreshToken);
    syncAuth();
    loadSdk();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((err) => setOutcome("outcome", "bad", "The demo could not start: " + err.message));
  });
})();
