// Dialtone passkeys: runs the WebAuthn ceremonies between the server's JSON and the
// browser's navigator.credentials, converting base64url <-> ArrayBuffer on the way.
// Plain script, no build step. Exposes window.DialtonePasskeys.{create,get}: each takes
// the server's options JSON ({"publicKey": ...}) and resolves to the JSON string of the
// credential the browser made, ready to post back.
(function () {
  "use strict";

  function fromB64url(s) {
    s = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buf) {
    if (!buf) return null;
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = fromB64url(c.id);
      return copy;
    });
  }

  function extensions(cred) {
    try { return cred.getClientExtensionResults() || {}; } catch (e) { return {}; }
  }

  // navigator.credentials.create() with the server's creation options.
  function create(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return navigator.credentials.create({ publicKey: pk }).then(function (cred) {
      var r = cred.response;
      var transports = typeof r.getTransports === "function" ? r.getTransports() : undefined;
      return JSON.stringify({
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: toB64url(r.attestationObject),
          clientDataJSON: toB64url(r.clientDataJSON),
          transports: transports
        },
        extensions: extensions(cred)
      });
    });
  }

  // navigator.credentials.get() with the server's request options.
  function get(options) {
    var pk = Object.assign({}, options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return navigator.credentials.get({ publicKey: pk, mediation: options.mediation }).then(function (cred) {
      var r = cred.response;
      return JSON.stringify({
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: toB64url(r.userHandle)
        },
        extensions: extensions(cred)
      });
    });
  }

  window.DialtonePasskeys = { create: create, get: get };

  // Posts `form`'s fields (with its csrf_token) and `extra`, url-encoded; resolves to the
  // JSON answer, or rejects with an Error whose message the page can show (and whose
  // `redirect`, when the server gave one, is where to go instead).
  function postForm(form, url, extra, fallback) {
    var body = new URLSearchParams(new FormData(form));
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json" },
      body: body
    }).then(function (r) {
      if (r.redirected) throw new Error("You were signed out. Reload the page and sign in again.");
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var e = new Error(data.error || (r.status === 403
            ? "This page has expired. Reload it and try again."
            : fallback));
          e.redirect = data.redirect;
          throw e;
        }
        return data;
      });
    });
  }

  // The second step of a sign-in: the "Use a passkey" button.
  var step = document.getElementById("passkey-step");
  if (step) {
    var stepForm = document.getElementById("passkey-step-form");
    var stepError = document.getElementById("passkey-error");
    var stepStatus = document.getElementById("passkey-status");
    document.getElementById("passkey-needs-js").hidden = true;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      document.getElementById("passkey-unsupported").hidden = false;
    } else {
      stepForm.hidden = false;
      var stepBusy = false;
      var fallback = "The portal could not check the passkey. Try again in a moment.";
      stepForm.addEventListener("submit", function (event) {
        event.preventDefault();
        if (stepBusy) return;
        stepBusy = true;
        stepError.hidden = true;
        stepStatus.textContent = "Follow your browser's prompt to use your passkey…";
        postForm(stepForm, step.dataset.startUrl, {}, fallback)
          .then(function (options) {
            return get(options).catch(function () {
              throw new Error("No passkey was used: the prompt was closed, timed out or refused.");
            });
          })
          .then(function (response) {
            stepStatus.textContent = "Checking the passkey…";
            return postForm(stepForm, step.dataset.finishUrl, { response: response }, fallback);
          })
          .then(function (done) {
            stepStatus.textContent = "Signed in.";
            window.location.assign(done.redirect || "/phone");
          })
          .catch(function (e) {
            if (e.redirect) {
              window.location.assign(e.redirect);
              return;
            }
            stepStatus.textContent = "";
            stepError.textContent = e.message;
            stepError.hidden = false;
          })
          .then(function () { stepBusy = false; });
      });
    }
  }

  // Settings -> Passkeys: the "Add a passkey" form.
  var section = document.getElementById("add-passkey");
  if (!section) return;
  var form = document.getElementById("passkey-add-form");
  var errorBox = document.getElementById("passkey-error");
  var status = document.getElementById("passkey-status");
  document.getElementById("passkey-needs-js").hidden = true;
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.getElementById("passkey-unsupported").hidden = false;
    return;
  }
  form.hidden = false;

  function showError(message) {
    status.textContent = "";
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  // Posts the form's fields (with its csrf_token) and `extra`, url-encoded.
  function post(url, extra) {
    var body = new URLSearchParams(new FormData(form));
    Object.keys(extra || {}).forEach(function (k) { body.set(k, extra[k]); });
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json" },
      body: body
    }).then(function (r) {
      if (r.redirected) throw new Error("You were signed out. Reload the page and sign in again.");
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          throw new Error(data.error || (r.status === 403
            ? "This page has expired. Reload it and try again."
            : "The portal could not add the passkey. Try again in a moment."));
        }
        return data;
      });
    });
  }

  var busy = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    errorBox.hidden = true;
    var name = document.getElementById("passkey-name").value.trim();
    if (!name) {
      showError("Give the passkey a name first.");
      return;
    }
    busy = true;
    status.textContent = "Follow your browser's prompt to make the passkey…";
    post(section.dataset.startUrl)
      .then(function (options) {
        return create(options).catch(function (e) {
          throw new Error(e && e.name === "InvalidStateError"
            ? "This authenticator already holds a passkey for your account."
            : "No passkey was made: the prompt was closed, timed out or refused.");
        });
      })
      .then(function (response) {
        status.textContent = "Saving the passkey…";
        return post(section.dataset.finishUrl, { response: response });
      })
      .then(function (done) {
        status.textContent = "Passkey added.";
        var codes = done.codes || [];
        var shown = document.getElementById("passkey-codes");
        if (codes.length && shown) {
          // The first second factor: its recovery codes, shown this once.
          var list = document.getElementById("recovery-codes");
          codes.forEach(function (c) {
            var li = document.createElement("li");
            li.textContent = c;
            list.appendChild(li);
          });
          if (done.redirect) document.getElementById("codes-continue").href = done.redirect;
          section.hidden = true;
          shown.hidden = false;
          shown.scrollIntoView();
          document.getElementById("codes-continue").focus();
          return;
        }
        window.location.assign(done.redirect || window.location.pathname);
      })
      .catch(function (e) { showError(e.message); })
      .then(function () { busy = false; });
  });
})();
