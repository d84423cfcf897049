// Package notify tells people about packages: the "New package" email to a
// portal's recipients when a package is finalized (with a download link made
// for the message), a receipt to its sender, and the "Transfer to iconik"
// email and Slack message when a delivery settles. Every message is a row
// and a River job written in the transaction of the event that causes it,
// unique per (event, kind, recipient), so none is lost or created twice.
// It never logs or returns an SMTP password or a Slack webhook URL, and
// never puts a byte a sender typed into a mail header unescaped.
package notify
