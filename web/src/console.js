// The admin console's script: pages work without it (plain forms and
// links); it adds copy buttons, confirmations, and live updates over
// server-sent events. Loaded with the page's CSP nonce.
import './console.css'

// <button data-copy="#id">: copies the text (or value) of the element.
document.addEventListener('click', async (ev) => {
  const btn = ev.target.closest('[data-copy]')
  if (!btn) return
  const el = document.querySelector(btn.dataset.copy)
  if (!el) return
  const text = el.value !== undefined ? el.value : el.textContent
  try {
    await navigator.clipboard.writeText(text.trim())
    const was = btn.textContent
    btn.textContent = 'Copied'
    setTimeout(() => { btn.textContent = was }, 1500)
  } catch {
    if (el.select) el.select()
  }
})

// <form data-confirm="Delete this portal?">: asks before submitting.
document.addEventListener('submit', (ev) => {
  const msg = ev.target.dataset && ev.target.dataset.confirm
  if (msg && !window.confirm(msg)) ev.preventDefault()
})

// ferryLive(url, onMessage) follows a server-sent event stream, reconnecting
// by itself (EventSource does), and calls onMessage with each parsed event.
window.ferryLive = function (url, onMessage) {
  const es = new EventSource(url)
  es.onmessage = (ev) => {
    try { onMessage(JSON.parse(ev.data)) } catch (e) { console.error(e) }
  }
  return es
}
