// parkmatch workbench: htmx sends the session's CSRF token with every request it makes. (Its other settings,
// error answers swapped in like any other, are in the page's htmx-config meta element.)
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) {
    event.detail.headers["X-CSRF-Token"] = meta.content;
  }
});
