// Photos and documents: say which chosen file is too large before anything is sent.
//
// The server refuses an oversized file too, naming it, and keeps the rest of
// the form; but a whole upload over its limit is refused unread (413), and
// then nothing could be named. The limits come from the fieldset's data-*
// attributes (the server's own settings).
(function () {
  function size(bytes) {
    return bytes < 1000000 ? Math.round(bytes / 1000) + " KB" : (bytes / 1000000).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  function problems(field) {
    var maxFile = Number(field.dataset.maxFileBytes);
    var maxUpload = Number(field.dataset.maxUploadBytes);
    var found = [];
    var total = 0;
    field.querySelectorAll("input[type=file]").forEach(function (input) {
      Array.prototype.forEach.call(input.files || [], function (file) {
        total += file.size;
        if (file.size > maxFile) {
          found.push(file.name + " is " + size(file.size) + "; files can be at most " + size(maxFile) + ".");
        }
      });
    });
    if (total > maxUpload) {
      found.push("The files come to " + size(total) + "; at most " + size(maxUpload) + " can go at once.");
    }
    return found;
  }

  function check(form) {
    var field = form && form.querySelector && form.querySelector("fieldset.files-field");
    if (!field) return true;
    var found = problems(field);
    var output = field.querySelector(".files-check");
    output.textContent = found.join(" ");
    output.hidden = found.length === 0;
    return found.length === 0;
  }

  document.addEventListener("change", function (event) {
    if (event.target.type === "file") check(event.target.form);
  });
  document.addEventListener("submit", function (event) {
    if (!check(event.target)) event.preventDefault();
  }, true);
})();
