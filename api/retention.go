package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/postflight/postflight"
)

type retentionBody struct {
	Days json.Number `json:"days"`
}

type retention struct {
	Days int `json:"days"`
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	days, err := s.st.RetentionDays(r.Context(), r.PathValue("account_sid"))
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, retention{Days: days})
}

func (s *Server) putRetention(w http.ResponseWriter, r *http.Request) {
	var b retentionBody
	if p := decodeBody(w, r, s.cfg.MaxBodyBytes, &b, "application/json"); p != nil {
		writeProblem(w, *p)
		return
	}
	days, err := strconv.Atoi(b.Days.String())
	if err != nil || days < postflight.MinRetentionDays || days > postflight.MaxRetentionDays {
		writeProblem(w, badRequestFrom(&postflight.FieldError{Field: "days", Reason: "want an integer from 1 to 3650"}))
		return
	}
	set, err := s.st.SetRetentionDays(r.Context(), r.PathValue("account_sid"), days)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, retention{Days: set})
}
