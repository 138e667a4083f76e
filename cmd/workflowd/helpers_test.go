package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/workflowd/workflowd/internal/apitest"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func decodeResponse(resp *http.Response) (apitest.Response, error) {
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apitest.Response{}, err
	}
	r := apitest.Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			return r, err
		}
	}
	return r, nil
}
