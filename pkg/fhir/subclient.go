package fhir

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Read GETs one resource (a read of Type/id or an absolute reference on
// the same server) and parses it.
func (c *Client) Read(ctx context.Context, u string) (*Resource, error) {
	body, err := c.get(ctx, "read "+opName(u), u)
	if err != nil {
		return nil, err
	}
	return Parse(body, ParseOptions{})
}

// get GETs u and returns the body of a 200; any other answer is the
// server's *OutcomeError, a body cut short a retryable one.
func (c *Client) get(ctx context.Context, op, u string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, failure(op, resp)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &OutcomeError{Op: op, Status: resp.StatusCode, Class: Retryable}
	}
	return body, nil
}

// CreateSubscription POSTs a Subscription to base and returns the id the
// server gave it.
func (c *Client) CreateSubscription(ctx context.Context, base string, req SubscriptionRequest) (string, error) {
	u := strings.TrimRight(base, "/") + "/Subscription"
	resp, err := c.doBody(ctx, http.MethodPost, u, map[string]string{"Content-Type": "application/fhir+json"}, req.JSON())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", failure("create Subscription", resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", &OutcomeError{Op: "create Subscription", Status: resp.StatusCode, Class: Retryable}
	}
	r, err := Parse(body, ParseOptions{})
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// SubscriptionEvents asks $events for the events numbered since..until
// (inclusive) with their focus resources. A server without $events
// answers an *OutcomeError (typically 400/404/501, not-supported).
func (c *Client) SubscriptionEvents(ctx context.Context, base, id string, since, until int64) (*Notification, error) {
	q := url.Values{}
	q.Set("eventsSinceNumber", strconv.FormatInt(since, 10))
	q.Set("eventsUntilNumber", strconv.FormatInt(until, 10))
	q.Set("content", PayloadFullResource)
	return c.subscriptionOp(ctx, strings.TrimRight(base, "/")+"/Subscription/"+url.PathEscape(id)+"/$"+OperationEvents+"?"+q.Encode())
}

// SubscriptionStatus asks $status: the subscription's status and its
// events-since-subscription-start.
func (c *Client) SubscriptionStatus(ctx context.Context, base, id string) (*Notification, error) {
	return c.subscriptionOp(ctx, strings.TrimRight(base, "/")+"/Subscription/"+url.PathEscape(id)+"/$"+OperationStatus)
}

func (c *Client) subscriptionOp(ctx context.Context, u string) (*Notification, error) {
	body, err := c.get(ctx, "subscription "+opName(u), u)
	if err != nil {
		return nil, err
	}
	return ParseNotification(body)
}
