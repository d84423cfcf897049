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

// Sizes as the server writes them (1.5 MiB).
function size (n) {
  if (n < 1024) return n + ' B'
  let div = 1024; let exp = 0
  for (let m = Math.floor(n / 1024); m >= 1024; m = Math.floor(m / 1024)) { div *= 1024; exp++ }
  return Math.floor(n / div) + '.' + Math.floor((n % div) * 10 / div) + ' ' + 'KMGTPE'[exp] + 'iB'
}

function setBadge (el, state) {
  if (!el) return
  el.className = 'badge ' + state
  el.textContent = state
}

function setProgress (el, pct) {
  if (!el) return
  el.setAttribute('aria-valuenow', pct)
  el.firstElementChild.style.width = pct + '%'
}

function text (el, t) { if (el && el.textContent !== t) el.textContent = t }

// The package page: each delivery and file updates in place from the
// page's event stream (data-live); a delivery the page does not show yet
// (a Send to Cloud from elsewhere) reloads it once.
function liveDeliveries (root) {
  let reloaded = false
  window.ferryLive(root.dataset.live, (msg) => {
    for (const d of msg.deliveries || []) {
      const card = root.querySelector('[data-delivery="' + d.id + '"]')
      if (!card) {
        if (!reloaded) { reloaded = true; window.location.reload() }
        continue
      }
      setBadge(card.querySelector('h3 [data-field=state]'), d.state)
      setProgress(card.querySelector(':scope > [data-field=progress]'), d.percent)
      text(card.querySelector(':scope > p [data-field=bytes]'), size(d.bytes_done) + ' of ' + size(d.bytes))
      text(card.querySelector(':scope > p [data-field=reason]'), d.reason || d.error || '')
      if (d.collection_path) text(card.querySelector('[data-field=collection]'), d.collection_path)
      const retry = card.querySelector('[data-field=retry]')
      if (retry) retry.hidden = !d.failed
      for (const f of d.files || []) {
        const row = card.querySelector('[data-file="' + f.file_id + '"]')
        if (!row) continue
        setBadge(row.querySelector('[data-field=state]'), f.state)
        setProgress(row.querySelector('[data-field=progress]'), f.percent)
        text(row.querySelector('[data-field=bytes]'), size(f.bytes_done) + ' of ' + size(f.size))
        text(row.querySelector('[data-field=speed]'), f.speed > 0 ? size(f.speed) + '/s' : '–')
        let att = String(f.attempts)
        if (f.next_attempt_at) att += ' · next at ' + new Date(f.next_attempt_at).toLocaleTimeString()
        text(row.querySelector('[data-field=attempts]'), att)
        text(row.querySelector('[data-field=error]'), f.error || (f.last_error ? 'last: ' + f.last_error : ''))
        const kf = row.querySelector('[data-field=keyframes]')
        if (kf && f.state === 'delivered' && f.keyframe_job_id && !kf.querySelector('img')) {
          const img = document.createElement('img')
          img.className = 'thumb'
          img.alt = 'Keyframe of ' + f.path
          img.src = window.location.pathname + '/deliveries/' + d.id + '/files/' + f.file_id + '/keyframe'
          const note = document.createElement('span')
          note.className = 'muted nothumb'
          note.hidden = true
          note.textContent = 'none yet'
          kf.replaceChildren(img, note)
        }
      }
    }
  })
}

const live = document.querySelector('#deliveries[data-live]')
if (live) liveDeliveries(live)

// A keyframe iconik does not have (yet): say so instead of a broken image.
document.addEventListener('error', (ev) => {
  const img = ev.target
  if (!(img instanceof HTMLImageElement) || !img.classList.contains('thumb')) return
  img.hidden = true
  const note = img.nextElementSibling
  if (note && note.classList.contains('nothumb')) note.hidden = false
}, true)
