// Latchkey: small enhancements. Every page works without this file; the
// server validates everything.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function post(url, data) {
    var body = new URLSearchParams(data);
    body.set("_csrf", csrf);
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRF-Token": csrf } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });

  // Show / hide password.
  document.querySelectorAll("[data-toggle-password]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var input = document.getElementById(btn.getAttribute("data-toggle-password"));
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      btn.textContent = show ? "Hide" : "Show";
    });
  });

  // Live policy checklist: the server's policy decides, debounced.
  document.querySelectorAll("[data-checklist-for]").forEach(function (list) {
    var input = document.getElementById(list.getAttribute("data-checklist-for"));
    var url = list.getAttribute("data-check-url") || "/portal/password/check";
    var timer;
    function update() {
      var pw = input.value;
      if (!pw) {
        list.querySelectorAll("li").forEach(function (li) { li.classList.remove("pass", "fail"); });
        return;
      }
      post(url, { password: pw }).then(function (res) {
        list.querySelectorAll("li").forEach(function (li) {
          var failing = res.failing.indexOf(li.getAttribute("data-rule")) >= 0;
          li.classList.toggle("fail", failing);
          li.classList.toggle("pass", !failing);
        });
      }).catch(function () {});
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 200); });
    input.form && input.form.addEventListener("reset", function () { setTimeout(update, 0); });
    if (input.value) update();
  });

  // Generate a policy-compliant password with the server's generator.
  document.querySelectorAll("[data-generate-password]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var input = document.getElementById(btn.getAttribute("data-generate-password"));
      post(btn.getAttribute("data-generate-url") || "/portal/password/generate", {}).then(function (res) {
        input.value = res.password;
        input.type = "text";
        var toggle = document.querySelector('[data-toggle-password="' + input.id + '"]');
        if (toggle) toggle.textContent = "Hide";
        input.dispatchEvent(new Event("input"));
      });
    });
  });

  // Create User: enable and disable fields as the radios change.
  var form = document.querySelector("[data-create-user]");
  if (form) {
    var send = form.querySelector("#sendPassword");
    var expire = form.querySelector("#setPasswordExpired");
    var auto = form.querySelector("#mode-auto");
    var pw = form.querySelector("#password");
    var placeholders = { email: "user@example.com", phone: "+14155550100", username: "username" };
    var sync = function () {
      var kind = (form.querySelector('input[name="loginIDKey"]:checked') || {}).value;
      var mode = (form.querySelector('input[name="passwordMode"]:checked') || {}).value;
      // An email gets the password by email, a phone by text message (issue 10).
      var isEmail = kind === "email" || kind === "phone";
      var target = form.querySelector("[data-send-target]");
      if (target) target.textContent = kind === "phone" ? "phone" : "email";
      auto.disabled = !isEmail;
      auto.closest("label").classList.toggle("is-disabled", !isEmail);
      form.querySelector('[data-hint-for="mode-auto"]').hidden = isEmail;
      if (!isEmail && mode === "auto") { form.querySelector("#mode-manual").checked = true; mode = "manual"; }
      send.disabled = !(isEmail && mode === "manual");
      if (mode === "auto") send.checked = true;
      if (mode === "none") send.checked = false;
      send.closest("label").classList.toggle("is-disabled", send.disabled && mode !== "auto");
      form.querySelector('[data-hint-for="sendPassword"]').hidden = isEmail && mode !== "none";
      expire.disabled = mode === "none";
      expire.closest("label").classList.toggle("is-disabled", expire.disabled);
      pw.disabled = mode !== "manual";
      form.querySelector('[data-when-mode="manual"]').hidden = mode !== "manual";
      var loginID = form.querySelector("#loginID");
      loginID.placeholder = placeholders[kind] || "";
      loginID.type = kind === "email" ? "email" : kind === "phone" ? "tel" : "text";
    };
    form.addEventListener("change", sync);
    sync();
  }
  // Reset Password: "Automatically create a password" always sends it, so
  // the send checkbox turns on and locks; the password field only shows for
  // "Enter a password". Without an email both stay disabled (server-rendered).
  var reset = document.querySelector("[data-reset-password]");
  if (reset) {
    var rsend = reset.querySelector("#sendPassword");
    var rpw = reset.querySelector("#password");
    var hasEmail = !rsend.disabled;
    var userChoice = rsend.checked;
    var rsync = function (ev) {
      var mode = (reset.querySelector('input[name="passwordMode"]:checked') || {}).value;
      if (ev && ev.target === rsend) userChoice = rsend.checked;
      if (hasEmail) {
        rsend.disabled = mode === "auto";
        rsend.checked = mode === "auto" ? true : userChoice;
      }
      rpw.disabled = mode !== "manual";
      reset.querySelector('[data-when-mode="manual"]').hidden = mode !== "manual";
    };
    reset.addEventListener("change", rsync);
    rsync();
  }
})();

// Forms marked data-confirm ask before they submit (destructive actions).
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
    });
  });
})();

// Applications (OpenID Connect): buttons marked data-copy copy the text of
// the element with that ID (client ID, client secret) to the clipboard.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var el = document.getElementById(btn.getAttribute("data-copy"));
      if (!el || !navigator.clipboard) return;
      navigator.clipboard.writeText(el.textContent.trim()).then(function () {
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = "Copy"; }, 1500);
      });
    });
  });
})();
