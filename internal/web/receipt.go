package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// A sender's receipt: after finalizing, the portal page links to
// /r/{token}, a page listing the package's files and whether it has been
// delivered. The token is the package id with a MAC of the server's secret,
// so it needs no storage, cannot be guessed from an id, and (unlike the
// upload token, which it is not) opens nothing but this read-only page.

func (s *Server) receiptToken(packageID string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("receipt v1|" + packageID))
	return packageID + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// receiptPackage resolves a receipt token to its package id ("" if forged).
func (s *Server) receiptPackage(token string) string {
	id, _, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(s.receiptToken(id)), []byte(token)) {
		return ""
	}
	return id
}

// receiptDelivery is what a sender may know of a delivery: where it goes
// (the connection's name is the studio's business, so only a count), and
// how far it is.
type receiptDelivery struct {
	State     string
	Files     int
	Delivered int
	Failed    int
}

func (s *Server) receiptPage(w http.ResponseWriter, r *http.Request) error {
	id := s.receiptPackage(r.PathValue("token"))
	if id == "" {
		render(w, http.StatusNotFound, "message.html", map[string]any{"Title": "No such receipt", "Message": "Check the address you were given."})
		return nil
	}
	pkg, err := s.opt.Store.PackageGet(r.Context(), id)
	if err != nil {
		render(w, http.StatusNotFound, "message.html", map[string]any{"Title": "No such receipt", "Message": "This package is no longer kept."})
		return nil
	}
	var deliveries []receiptDelivery
	if ds, err := s.deliveries(); err == nil {
		list, err := ds.DeliveryList(r.Context(), id)
		if err != nil {
			return err
		}
		for _, d := range list {
			rd := receiptDelivery{State: d.State, Files: len(d.Files)}
			for _, f := range d.Files {
				switch f.State {
				case "delivered":
					rd.Delivered++
				case "failed":
					rd.Failed++
				}
			}
			deliveries = append(deliveries, rd)
		}
	}
	render(w, http.StatusOK, "receipt.html", map[string]any{"Package": pkg, "Deliveries": deliveries})
	return nil
}
