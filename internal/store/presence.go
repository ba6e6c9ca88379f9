package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// A room's presence log lives in a partition of its own, pk plog#{room}
// (not room#{room}, which sync and every broadcast read): its head (sk
// "head", a headItem as the messages have) numbers the room's joins and
// leaves 1, 2, 3…, and each is kept for PresenceLogTTL under sk e#{pseq}.
const (
	plogPrefix   = "plog#"
	plogEventPre = "e#"
)

func plogKey(pseq int64) string { return fmt.Sprintf("%s%019d", plogEventPre, pseq) }

// plogItem is one logged join or leave.
type plogItem struct {
	keys
	Type      string `dynamodbav:"type"`
	UserID    string `dynamodbav:"userId"`
	Name      string `dynamodbav:"name"`
	Ver       int64  `dynamodbav:"ver"`
	SentAt    string `dynamodbav:"sentAt"`
	PSeq      int64  `dynamodbav:"pseq"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
}

func (it plogItem) event(room string) chat.PresenceEvent {
	return chat.PresenceEvent{Type: it.Type, Room: room, UserID: it.UserID, Name: it.Name, Version: it.Ver, SentAt: it.SentAt, PSeq: it.PSeq}
}

// LogPresence gives a room's join or leave the room's next number and
// keeps it for PresenceLogTTL, so that a client that missed it can fetch
// it (PresenceSince); it returns e numbered. Call it after the change e
// reports is stored and before e is sent: a sync that reads the number
// first (PresenceSeq) then shows the change. The counter never expires: a
// room's numbers never go back. Two requests, neither conditional; if the
// second fails the number is taken but not kept, and a client that asks
// for it syncs instead.
func (db *DB) LogPresence(ctx context.Context, e chat.PresenceEvent) (chat.PresenceEvent, error) {
	out, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+e.Room, headSK),
		UpdateExpression:          aws.String("ADD seq :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return e, fmt.Errorf("number a presence event of room %q: %w", e.Room, err)
	}
	var head headItem
	if err := unmarshal(out.Attributes, &head); err != nil {
		return e, err
	}
	e.PSeq = head.Seq
	// An UpdateItem, not a PutItem: the functions that log presence may
	// update the table, not put into it.
	_, err = db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+e.Room, plogKey(e.PSeq)),
		UpdateExpression:         aws.String("SET #type = :type, userId = :user, #name = :name, ver = :ver, sentAt = :at, pseq = :pseq, #ttl = :exp"),
		ExpressionAttributeNames: map[string]string{"#type": "type", "#name": "name", "#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":type": str(e.Type), ":user": str(e.UserID),
			":name": str(e.Name), ":ver": num(e.Version), ":at": str(e.SentAt), ":pseq": num(e.PSeq),
			":exp": num(db.Now().Add(db.PresenceLogTTL).Unix())},
	})
	if err != nil {
		return e, fmt.Errorf("keep presence event %d of room %q: %w", e.PSeq, e.Room, err)
	}
	return e, nil
}

// PresenceHead returns a room's presence log head: the number of its
// latest presence event (0: none yet), how many users are online there,
// and the count last pushed.
func (db *DB) PresenceHead(ctx context.Context, room string) (chat.PresenceHead, error) {
	var head plogHead
	if _, err := db.getItem(ctx, db.tables.Connections, key(plogPrefix+room, headSK), &head); err != nil {
		return chat.PresenceHead{}, fmt.Errorf("get latest presence event of room %q: %w", room, err)
	}
	return head.head(db.Now()), nil
}

// plogHead is the head of a room's presence log. Online counts the users
// with a connection there (CountOnline); PushedOnline and PushedAt are the
// count last pushed to the room and when (ClaimOnlinePush).
type plogHead struct {
	keys
	Seq          int64 `dynamodbav:"seq"`
	Online       int64 `dynamodbav:"online"`
	PushedOnline int64 `dynamodbav:"pushedOnline"`
	PushedAt     int64 `dynamodbav:"pushedAt"`              // Unix ms
	Shards       int   `dynamodbav:"shards"`                // absent: 1 (shards.go)
	Spread       int   `dynamodbav:"spread,omitempty"`      // the count before it shrank, read until SpreadUntil
	SpreadUntil  int64 `dynamodbav:"spreadUntil,omitempty"` // Unix ms
	ToldAt       int64 `dynamodbav:"toldAt"`                // Unix ms (ClaimTell, FinishFlush)
	FlushDue     int64 `dynamodbav:"flushDue"`              // Unix ms (ScheduleFlush)
	FlushedTo    int64 `dynamodbav:"flushedTo"`             // a pseq (ClaimTell, FinishFlush)
	RecountedAt  int64 `dynamodbav:"recountedAt"`           // Unix ms (ClaimRecount)
}

// head is the head as readers use it at now: Shards says how many shards
// to read.
func (h plogHead) head(now time.Time) chat.PresenceHead {
	return chat.PresenceHead{PSeq: h.Seq, Online: h.Online, PushedOnline: h.PushedOnline, PushedAt: optionalMS(h.PushedAt), Shards: h.readShards(now),
		ToldAt: optionalMS(h.ToldAt), FlushDue: optionalMS(h.FlushDue), FlushedTo: h.FlushedTo, RecountedAt: optionalMS(h.RecountedAt)}
}

// CountOnline adds delta to a room's count of users online, and returns
// the head after it: 1 for the PutConnection whose presence has one
// connection (the add that made the set: only one caller is told so), -1
// for the removal that reports left.
func (db *DB) CountOnline(ctx context.Context, room string, delta int64) (chat.PresenceHead, error) {
	out, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+room, headSK),
		UpdateExpression:          aws.String("ADD #online :d"),
		ExpressionAttributeNames:  map[string]string{"#online": "online"}, // a reserved word
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": num(delta)},
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return chat.PresenceHead{}, fmt.Errorf("count users online in room %q: %w", room, err)
	}
	var head plogHead
	if err := unmarshal(out.Attributes, &head); err != nil {
		return chat.PresenceHead{}, err
	}
	return head.head(db.Now()), nil
}

// CorrectOnline sets a room's count of users online from was to n, if it
// is still was: a reader that has just counted the room (a sync) corrects
// a count that a failed or repeated write left off.
func (db *DB) CorrectOnline(ctx context.Context, room string, was, n int64) error {
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+room, headSK),
		UpdateExpression:          aws.String("SET #online = :n"),
		ConditionExpression:       aws.String("#online = :was OR (attribute_not_exists(#online) AND :was = :zero)"),
		ExpressionAttributeNames:  map[string]string{"#online": "online"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n), ":was": num(was), ":zero": num(0)},
	})
	if err != nil && !conditionFailed(err) { // changed meanwhile: the next reader corrects it
		return fmt.Errorf("correct the count online of room %q: %w", room, err)
	}
	return nil
}

// ClaimRecount records that a room's users online are counted by reading
// the room at now, if they were last at prev (the head's RecountedAt when
// read): of concurrent callers one reads.
func (db *DB) ClaimRecount(ctx context.Context, room string, prev, now time.Time) (bool, error) {
	ok, _, err := db.claimHead(ctx, room, "recountedAt", prev, "SET recountedAt = :now", "", map[string]types.AttributeValue{":now": num(ms(now))})
	if err != nil {
		return false, fmt.Errorf("claim a recount of room %q: %w", room, err)
	}
	return ok, nil
}

// ClaimOnlinePush records that count online is pushed to a room at now,
// if the push before it is still the one at prev (the head's PushedAt
// when read): of concurrent callers one pushes.
func (db *DB) ClaimOnlinePush(ctx context.Context, room string, online int64, prev, now time.Time) (bool, error) {
	ok, _, err := db.claimHead(ctx, room, "pushedAt", prev, "SET pushedOnline = :n, pushedAt = :now", "",
		map[string]types.AttributeValue{":n": num(online), ":now": num(ms(now))})
	if err != nil {
		return false, fmt.Errorf("claim the push of room %q's count online: %w", room, err)
	}
	return ok, nil
}

// claimHead applies update to a room's presence head if its time attr is
// still prev (zero: absent), as the caller read it, and cond holds (""
// for none): of concurrent callers one makes it. values are the update's
// and cond's. It returns the head as it is after (changed by the caller,
// or by another).
func (db *DB) claimHead(ctx context.Context, room, attr string, prev time.Time, update, cond string, values map[string]types.AttributeValue) (bool, plogHead, error) {
	c := "attribute_not_exists(" + attr + ")"
	if !prev.IsZero() {
		c, values[":prev"] = attr+" = :prev", num(ms(prev))
	}
	if cond != "" {
		c += " AND " + cond
	}
	item, ok, err := db.updateReturning(ctx, &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: key(plogPrefix+room, headSK),
		UpdateExpression: &update, ConditionExpression: &c, ExpressionAttributeValues: values,
	})
	var head plogHead
	if err == nil {
		err = unmarshal(item, &head)
	}
	return ok && err == nil, head, err
}

// A room's joins and leaves go out in bursts when a queue can hold them
// back (docs/storage.md "Presence in bursts"): its head's toldAt is when
// the room was last told them, flushDue when the flush of those held back
// since is due (absent: none is pending), flushedTo the number up to which
// the room was told every one.

// ClaimTell records that a room is told its joins and leaves up to pseq
// to at now, if it was last told at prev (the head's ToldAt when read)
// and no flush is pending: of concurrent callers one tells the room at
// once, and the next flush reads the log after to.
func (db *DB) ClaimTell(ctx context.Context, room string, prev, now time.Time, to int64) (bool, error) {
	ok, _, err := db.claimHead(ctx, room, "toldAt", prev, "SET toldAt = :now, flushedTo = :to",
		"attribute_not_exists(flushDue) AND (attribute_not_exists(flushedTo) OR flushedTo <= :to)",
		map[string]types.AttributeValue{":now": num(ms(now)), ":to": num(to)})
	if err != nil {
		return false, fmt.Errorf("claim telling room %q its presence: %w", room, err)
	}
	return ok, nil
}

// ScheduleFlush sets a room's flush due at due, if the one pending is
// still the one due at prev (zero: none), as the caller read it. If not,
// it returns the one pending now (zero: none; a flush finished meanwhile).
func (db *DB) ScheduleFlush(ctx context.Context, room string, prev, due time.Time) (ok bool, pending time.Time, err error) {
	ok, head, err := db.claimHead(ctx, room, "flushDue", prev, "SET flushDue = :due", "", map[string]types.AttributeValue{":due": num(ms(due))})
	switch {
	case err != nil:
		return false, time.Time{}, fmt.Errorf("schedule the presence flush of room %q: %w", room, err)
	case ok:
		return true, due, nil
	}
	return false, optionalMS(head.FlushDue), nil
}

// FinishFlush ends a room's flush due at due, if it is still the one
// pending: the room was told at now its joins and leaves up to pseq to.
// It reports false when another flush took its place meanwhile.
func (db *DB) FinishFlush(ctx context.Context, room string, due, now time.Time, to int64) (bool, error) {
	ok, _, err := db.claimHead(ctx, room, "flushDue", due, "REMOVE flushDue SET toldAt = :now, flushedTo = :to", "",
		map[string]types.AttributeValue{":now": num(ms(now)), ":to": num(to)})
	if err != nil {
		return false, fmt.Errorf("finish the presence flush of room %q: %w", room, err)
	}
	return ok, nil
}

// PresenceSince returns, in order, up to limit of a room's kept presence
// events whose number is above after, and whether more follow. An event
// that expired, or was numbered and never kept, is simply not there: the
// caller sees the hole in the numbers.
func (db *DB) PresenceSince(ctx context.Context, room string, after int64, limit int) (events []chat.PresenceEvent, more bool, err error) {
	items, err := db.query(ctx, &dynamodb.QueryInput{
		TableName:              &db.tables.Connections,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(plogPrefix + room), ":lo": str(plogKey(after + 1)), ":hi": str(plogKey(math.MaxInt64))},
		Limit: aws.Int32(int32(limit + 1)),
	}, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("query presence events of room %q after %d: %w", room, after, err)
	}
	var its []plogItem
	if err := attributevalue.UnmarshalListOfMaps(items, &its); err != nil {
		return nil, false, fmt.Errorf("decode presence events of room %q: %w", room, err)
	}
	if more = len(its) > limit; more {
		its = its[:limit]
	}
	events = make([]chat.PresenceEvent, len(its))
	for i, it := range its {
		events[i] = it.event(room)
	}
	return events, more, nil
}

// Members returns up to limit of the users online in a room, in the order
// of their user ids, starting after the user id cursor (""; from the
// first), and the cursor of the next page ("" when there is none). It
// reads the room's presence items only, a few pages at most: a page of
// members costs about one read unit per 40 users, whatever the room's
// size.
func (db *DB) Members(ctx context.Context, room, cursor string, limit int) (members []chat.Member, next string, err error) {
	in := &dynamodb.QueryInput{
		TableName:                 &db.tables.Connections,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :user)"),
		FilterExpression:          aws.String("#ttl > :now AND attribute_exists(conns)"),
		ProjectionExpression:      aws.String("sk, #name"),
		ExpressionAttributeNames:  map[string]string{"#ttl": TTLAttribute, "#name": "name"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(roomPrefix + room), ":user": str(userPrefix), ":now": num(db.Now().Unix())},
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(int32(limit)),
	}
	if cursor != "" {
		in.ExclusiveStartKey = key(roomPrefix+room, userPrefix+cursor)
	}
	for range maxMembersQueries {
		out, err := db.client.Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("query members of room %q: %w", room, err)
		}
		var its []presenceItem
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &its); err != nil {
			return nil, "", fmt.Errorf("decode members of room %q: %w", room, err)
		}
		for _, it := range its {
			members = append(members, chat.Member{UserID: strings.TrimPrefix(it.SK, userPrefix), Name: it.Name})
		}
		if out.LastEvaluatedKey == nil {
			return members, "", nil
		}
		if len(members) >= limit {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		in.Limit = aws.Int32(int32(limit - len(members)))
	}
	if len(members) == 0 { // a run of users who left: go on from where the reads stopped
		var last presenceItem
		if err := unmarshal(in.ExclusiveStartKey, &last); err != nil {
			return nil, "", err
		}
		return members, strings.TrimPrefix(last.SK, userPrefix), nil
	}
	return members, members[len(members)-1].UserID, nil
}

// maxMembersQueries bounds the reads of one Members call.
const maxMembersQueries = 4
