// kollega dashboard: "copy to intent" without leaving the page. Served as a file, never
// inline, so the Content-Security-Policy can forbid inline script. Without JavaScript the
// same forms post normally and the page reloads with a notice.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.copy-example")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const output = form.querySelector("output.result");
      const button = form.querySelector("button");
      const data = new FormData(form);
      const body = {
        intent: data.get("intent"),
        language: data.get("language"),
        text: data.get("text"),
      };
      button.disabled = true;
      output.className = "result";
      output.textContent = "…";
      try {
        const response = await fetch("/api/admin/examples", {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            "X-CSRF-Token": data.get("csrf_token"),
          },
          body: JSON.stringify(body),
        });
        const answer = await response.json().catch(() => ({}));
        if (response.ok) {
          output.className = "result ok";
          output.textContent = `Added to ${answer.intent} (${answer.file}:${answer.line})`;
        } else {
          output.className = "result failed";
          const problems = answer.problems || [];
          output.textContent = [answer.error || `Failed (${response.status})`, ...problems].join(" · ");
        }
      } catch (error) {
        output.className = "result failed";
        output.textContent = "Could not reach kollega";
      } finally {
        button.disabled = false;
      }
    });
  }
});
