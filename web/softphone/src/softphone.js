// The Phone tab's softphone: registers by itself with a short-lived credential from
// POST /phone/softphone/credential, renews it before it expires, and makes and takes
// calls over SIP-over-WebSocket (JsSIP). Its state is on the root element's
// data-softphone-state: connecting, registered, failed, ringing, calling, in-call.
// Built into static/softphone.js by `npm ci && npm run build` (see README.md).
"use strict";

const JsSIP = require("jssip/lib/JsSIP");

const root = document.getElementById("softphone");
if (root && root.dataset.credentialUrl) {
  start(root);
}

function start(root) {
  const $ = (id) => document.getElementById(id);
  const status = $("softphone-status");
  const problem = $("softphone-error");
  const incoming = $("softphone-incoming");
  const form = $("softphone-form");
  const number = $("softphone-number");
  const callButton = $("softphone-call");
  const answerButton = $("softphone-answer");
  const hangupButton = $("softphone-hangup");
  const muteButton = $("softphone-mute");
  const timer = $("softphone-timer");
  const audio = $("softphone-audio");

  let ua = null;
  let credential = null;
  let session = null;
  let registered = false;
  let stopped = false;
  let renewTimer = null;
  let retryTimer = null;
  let retryDelay = 2;
  let refusedOnce = false;
  let callStarted = 0;
  let tick = null;

  function setState(state, text) {
    root.dataset.softphoneState = state;
    status.textContent = text;
    const inCall = state === "in-call";
    const busy = state === "calling" || state === "ringing" || inCall;
    callButton.hidden = busy;
    callButton.disabled = state !== "registered";
    answerButton.hidden = state !== "ringing";
    hangupButton.hidden = !busy;
    muteButton.hidden = !inCall;
    timer.hidden = !inCall;
    incoming.hidden = state !== "ringing";
  }

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function idleState() {
    if (registered) {
      setState("registered", "Ready: calls to your extension ring here.");
    } else if (!stopped) {
      setState("connecting", "Connecting to the phone system…");
    }
  }

  function fail(text) {
    stopped = true;
    clearTimeout(renewTimer);
    clearTimeout(retryTimer);
    if (ua) {
      ua.stop();
    }
    registered = false;
    showProblem(text);
    setState("failed", "The softphone is not connected.");
  }

  class SignedOut extends Error {}

  async function fetchCredential() {
    const body = new URLSearchParams({ csrf_token: root.dataset.csrf });
    const r = await fetch(root.dataset.credentialUrl, {
      method: "POST",
      body,
      credentials: "same-origin",
      redirect: "manual",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    if (r.type === "opaqueredirect" || r.status === 401 || r.status === 403) {
      throw new SignedOut();
    }
    if (!r.ok) {
      throw new Error("credential " + r.status);
    }
    return r.json();
  }

  // Asks for a new credential a few minutes before this one ends.
  function scheduleRenewal(c) {
    clearTimeout(renewTimer);
    const lead = Math.min(300, Math.max(5, c.expires_in / 5));
    const wait = Math.max(5, c.expires_in - lead);
    renewTimer = setTimeout(renew, wait * 1000);
  }

  async function renew() {
    try {
      credential = await fetchCredential();
    } catch (e) {
      if (e instanceof SignedOut) {
        fail("Your portal session has ended. Sign in again to use the softphone.");
        return;
      }
      renewTimer = setTimeout(renew, 30 * 1000);
      return;
    }
    ua.set("authorization_user", credential.username);
    ua.set("password", credential.password);
    scheduleRenewal(credential);
    ua.register();
  }

  // The first connection; retried with backoff while the portal cannot be reached.
  async function connect() {
    setState("connecting", "Connecting to the phone system…");
    try {
      credential = await fetchCredential();
    } catch (e) {
      if (e instanceof SignedOut) {
        fail("Your portal session has ended. Sign in again to use the softphone.");
        return;
      }
      showProblem("The portal could not be reached. Trying again in " + retryDelay + " seconds.");
      retryTimer = setTimeout(connect, retryDelay * 1000);
      retryDelay = Math.min(retryDelay * 2, 60);
      return;
    }
    retryDelay = 2;
    showProblem("");
    ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(credential.ws_url)],
      uri: credential.uri,
      authorization_user: credential.username,
      password: credential.password,
      register: true,
      register_expires: 300,
      session_timers: false,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 60,
      user_agent: "Dialtone softphone",
    });
    ua.on("connected", () => {
      if (!problem.hidden && !stopped) {
        showProblem("");
      }
    });
    ua.on("disconnected", () => {
      if (stopped) {
        return;
      }
      registered = false;
      showProblem("The connection to the phone system dropped. Reconnecting…");
      if (!session) {
        idleState();
      }
    });
    ua.on("registered", () => {
      registered = true;
      refusedOnce = false;
      showProblem("");
      if (!session) {
        idleState();
      }
    });
    ua.on("unregistered", () => {
      registered = false;
      if (!session && !stopped) {
        idleState();
      }
    });
    ua.on("registrationFailed", (e) => {
      registered = false;
      const refused =
        e.cause === JsSIP.C.causes.REJECTED || e.cause === JsSIP.C.causes.AUTHENTICATION_ERROR;
      if (refused && !refusedOnce) {
        // Perhaps the credential just ran out: try once with a fresh one.
        refusedOnce = true;
        renew();
        return;
      }
      if (refused) {
        fail("The phone system refused the softphone's credential. Reload the page to try again; if it keeps happening, tell your administrator.");
        return;
      }
      showProblem("The phone system did not accept the registration. Trying again…");
      idleState();
    });
    ua.on("newRTCSession", (e) => onSession(e));
    ua.start();
    scheduleRenewal(credential);
  }

  function peer(s) {
    const id = s.remote_identity;
    const who = id.uri && id.uri.user ? id.uri.user : "unknown";
    return id.display_name ? id.display_name + " (" + who + ")" : who;
  }

  function onSession(e) {
    const s = e.session;
    if (session) {
      if (e.originator === "remote") {
        s.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      }
      return;
    }
    session = s;
    const who = peer(s);
    s.on("peerconnection", (p) => attachAudio(p.peerconnection));
    if (s.connection) {
      attachAudio(s.connection);
    }
    s.on("confirmed", () => {
      showProblem("");
      callStarted = Date.now();
      timer.textContent = "0:00";
      clearInterval(tick);
      tick = setInterval(showTime, 1000);
      muteButton.setAttribute("aria-pressed", "false");
      setState("in-call", "In a call with " + who + ".");
    });
    s.on("ended", () => endCall("The call ended."));
    s.on("failed", (f) => endCall(failure(f.cause)));
    if (e.originator === "remote") {
      $("softphone-caller").textContent = who;
      setState("ringing", "Incoming call from " + who + ".");
      answerButton.focus();
    } else {
      setState("calling", "Calling " + who + "…");
    }
  }

  function failure(cause) {
    const C = JsSIP.C.causes;
    switch (cause) {
      case C.USER_DENIED_MEDIA_ACCESS:
        return "The browser did not allow the microphone. Allow it for this site in the browser's settings, then call again.";
      case C.BUSY:
        return "The line is busy.";
      case C.NOT_FOUND:
        return "Nobody is reachable at that number right now.";
      case C.REJECTED:
        return "The call was refused.";
      case C.CANCELED:
        return "The call was cancelled.";
      case C.NO_ANSWER:
      case C.EXPIRES:
        return "Nobody answered.";
      case C.CONNECTION_ERROR:
      case C.REQUEST_TIMEOUT:
        return "The phone system could not be reached. The call did not go through.";
      default:
        return "The call ended: " + cause + ".";
    }
  }

  function endCall(text) {
    session = null;
    clearInterval(tick);
    audio.srcObject = null;
    idleState();
    status.textContent = text + " " + status.textContent;
  }

  function attachAudio(pc) {
    pc.addEventListener("track", (t) => {
      if (t.streams && t.streams[0]) {
        audio.srcObject = t.streams[0];
      }
    });
  }

  function showTime() {
    const s = Math.floor((Date.now() - callStarted) / 1000);
    timer.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function target(text) {
    const n = text.trim().replace(/[\s().-]/g, "");
    if (!/^[0-9*#+]{1,32}$/.test(n)) {
      return null;
    }
    const domain = credential.uri.slice(credential.uri.indexOf("@") + 1);
    return "sip:" + n + "@" + domain;
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (session || !registered) {
      return;
    }
    const to = target(number.value);
    if (!to) {
      number.setAttribute("aria-invalid", "true");
      showProblem("Enter a number: digits, * and # only, such as 202.");
      number.focus();
      return;
    }
    number.removeAttribute("aria-invalid");
    showProblem("");
    ua.call(to, {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    });
  });

  answerButton.addEventListener("click", () => {
    if (session && session.direction === "incoming" && !session.isEstablished()) {
      session.answer({
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: [] },
      });
      hangupButton.focus();
    }
  });

  hangupButton.addEventListener("click", () => {
    if (session) {
      session.terminate();
    }
    number.focus();
  });

  muteButton.addEventListener("click", () => {
    if (!session) {
      return;
    }
    const muted = session.isMuted().audio;
    if (muted) {
      session.unmute({ audio: true });
    } else {
      session.mute({ audio: true });
    }
    muteButton.setAttribute("aria-pressed", muted ? "false" : "true");
    muteButton.textContent = muted ? "Mute" : "Unmute";
  });

  for (const key of document.querySelectorAll("#softphone [data-digit]")) {
    key.addEventListener("click", () => {
      const d = key.dataset.digit;
      if (session && session.isEstablished()) {
        session.sendDTMF(d);
      } else {
        number.value += d;
      }
    });
  }

  // Leaving the page (signing out, closing the tab) ends the registration.
  window.addEventListener("pagehide", () => {
    stopped = true;
    if (ua) {
      ua.stop();
    }
  });

  connect();
}
