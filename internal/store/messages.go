package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// messageItem is a seq of a room: pk room#{room}, sk msg#{seq, 19 digits}.
// It holds a message, or, with Skipped, nothing: the seq was taken and its
// message was never stored (a tombstone, so that readers stop waiting).
type messageItem struct {
	keys
	ID        string `dynamodbav:"id,omitempty"`
	Seq       int64  `dynamodbav:"seq"`
	UserID    string `dynamodbav:"userId,omitempty"`
	Name      string `dynamodbav:"name,omitempty"`
	Text      string `dynamodbav:"text,omitempty"`
	SentAt    int64  `dynamodbav:"sentAt"` // Unix ms; a tombstone's: when it was written
	ClientID  string `dynamodbav:"clientId,omitempty"`
	Skipped   bool   `dynamodbav:"skipped,omitempty"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
	// A change (chat.Message.Kind) of the message at Target.
	Kind   string `dynamodbav:"kind,omitempty"`
	Target int64  `dynamodbav:"target,omitempty"`
	Emoji  string `dynamodbav:"emoji,omitempty"`
	Remove bool   `dynamodbav:"remove,omitempty"`
	// A message: what it answers and whom it mentions, and its state
	// (Version absent: 1). Its reactions are attributes of their own,
	// rc#{emoji} (the count) and rw#{emoji} (a string set of up to
	// chat.MaxReactors "{userId}\t{name}"), so that concurrent reactions
	// are atomic ADDs.
	ReplyTo   int64           `dynamodbav:"replyTo,omitempty"`
	Mentions  []string        `dynamodbav:"mentions,omitempty"`
	Version   int64           `dynamodbav:"version,omitempty"`
	Edited    int64           `dynamodbav:"edited,omitempty"` // Unix ms
	Deleted   bool            `dynamodbav:"deleted,omitempty"`
	RemovedBy string          `dynamodbav:"removedBy,omitempty"` // the moderator who removed it
	Reactions []chat.Reaction `dynamodbav:"-"`
	// An access change (chat.KindAccess) made by UserID (called Name): of
	// Member (called MemberName), whose role is Role after it (Was before),
	// muted until Until (Unix ms).
	Action     string `dynamodbav:"action,omitempty"`
	Member     string `dynamodbav:"member,omitempty"`
	MemberName string `dynamodbav:"memberName,omitempty"`
	Role       string `dynamodbav:"role,omitempty"`
	Was        string `dynamodbav:"was,omitempty"`
	Until      int64  `dynamodbav:"until,omitempty"`
	Token      string `dynamodbav:"token,omitempty"` // its writer's, so that a retried write knows its own
}

// headItem holds a room's latest seq: pk room#{room}, sk "head" (and, in
// the connections table, pk plog#{room}: its latest presence event). It
// never expires, so a room's numbers never go back. At is when the
// messages' latest seq was taken (Unix ms).
type headItem struct {
	keys
	Seq int64 `dynamodbav:"seq"`
	At  int64 `dynamodbav:"at,omitempty"`
}

// clientIDItem reserves a sender's clientId in a room: pk room#{room},
// sk client#{userId}#{clientId}; Seq names the message.
type clientIDItem struct {
	keys
	Seq       int64 `dynamodbav:"seq"`
	ExpiresAt int64 `dynamodbav:"expiresAt"`
}

func msgKey(seq int64) string { return fmt.Sprintf("%s%019d", msgPrefix, seq) }

// clientIDKey is unambiguous: a user id holds no "#".
func clientIDKey(userID, clientID string) string {
	return clientIDPrefix + userID + "#" + clientID
}

func (it messageItem) message(room string) chat.Message {
	if it.Kind == chat.KindAccess {
		e := chat.AccessEvent{Type: chat.TypeAccess, Action: it.Action, Room: room, Seq: it.Seq, UserID: it.Member, Name: it.MemberName,
			Role: it.Role, Was: it.Was, By: it.UserID, ByName: it.Name, SentAt: chat.FormatTime(fromMS(it.SentAt))}
		if it.Until > 0 {
			e.MutedUntil = chat.FormatTime(fromMS(it.Until))
		}
		return chat.Message{Seq: it.Seq, Room: room, UserID: it.UserID, Name: it.Name, SentAt: fromMS(it.SentAt), Kind: it.Kind, Access: &e}
	}
	return chat.Message{ID: it.ID, Seq: it.Seq, Room: room, UserID: it.UserID, Name: it.Name, Text: it.Text,
		SentAt: fromMS(it.SentAt), ClientID: it.ClientID, Kind: it.Kind, Target: it.Target, Emoji: it.Emoji, Remove: it.Remove,
		ReplyTo: it.ReplyTo, Mentions: it.Mentions, Version: max(it.Version, 1), Edited: optionalMS(it.Edited), Deleted: it.Deleted,
		Reactions: it.Reactions, RemovedBy: it.RemovedBy}
}

// Bounds on one PutMessage: the seqs it takes (another is taken only when
// a reader declared the last one skipped because this writer was too
// slow), and the attempts of one transaction that other transactions on
// the same items cancel.
const (
	maxSeqTakes        = 3
	maxConflictRetries = 4
)

// conflictBackoff spaces the attempts of a transaction that conflicted.
var conflictBackoff = chat.Backoff{First: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// PutMessage stores a message under the room's next seq. The seq comes
// from one atomic counter update (ADD, no condition), so its cost does not
// grow with the number of concurrent senders; then one transaction stores
// what must hold together:
//
//   - the message at its seq, if the seq holds nothing yet (a reader that
//     found it empty for SkipAfter declares it skipped, and this writer
//     takes another);
//   - when frame > 0, the sending connection's last frame moves from
//     frame-1 to frame, so a connection's messages are stored in the order
//     it numbered them;
//   - when m.ClientID is set, it is reserved for the sender (m.UserID, in
//     the room). A clientId the sender already used stores nothing: the
//     original message is returned with Duplicate (and frame is still
//     given its place).
//
// A seq taken and not used gets a tombstone at once (Skipped). The stored
// message carries its seq and the time it was taken (SentAt); m.Seq and
// m.SentAt are ignored. A connection no longer stored gives
// chat.ErrNoConnection; a frame that is not the connection's next gives
// chat.FrameError's error.
func (db *DB) PutMessage(ctx context.Context, m chat.Message, connID string, frame int64) (res chat.Stored, err error) {
	ch, writes, err := db.prepare(ctx, m, &res)
	switch {
	case err != nil && chat.ErrorCode(err) == chat.CodeInternal:
		return res, err // failed: the frame keeps its number and goes again
	case err != nil || !writes:
		// Refused, or nothing to change: unless it is a retry of one stored
		// (the reaction it made is what prepare found, or the message it
		// answered went since), which gets the original ack. Either way
		// the frame takes its place.
		if m.ClientID != "" {
			orig, found, origErr := db.Original(ctx, m.Room, m.UserID, m.ClientID)
			if origErr != nil {
				return res, origErr
			}
			if found {
				res = chat.Stored{Message: orig, Duplicate: true}
				return res, db.passed(ctx, connID, frame, nil)
			}
		}
		return res, db.passed(ctx, connID, frame, err)
	}
	for range maxSeqTakes {
		if m.Seq, err = db.nextSeq(ctx, m.Room); err != nil {
			return res, err
		}
		m.SentAt = db.Now() // after the seq was taken: readers rely on it
		res.Message = m
		retake, err := db.storeMessage(ctx, m, ch, connID, frame, &res)
		if !retake {
			if err == nil && m.Kind != "" && !res.Duplicate && !res.Unchanged {
				// The state the change made, or a later one. The change is
				// stored whatever this read does: a failure leaves the event
				// without a state, not the write unanswered.
				res.Target, res.TargetErr = db.Message(ctx, m.Room, m.Target)
			}
			return res, err
		}
	}
	return res, fmt.Errorf("put message in room %q: %d seqs taken were declared skipped before it was stored", m.Room, maxSeqTakes)
}

// prepare reads what a write needs before it takes a seq: the message a
// reply answers (into res.Answered; one deleted or not there refuses it),
// and what a reaction needs (prepareChange). writes is false, with
// res.Unchanged, for a reaction that would change nothing.
func (db *DB) prepare(ctx context.Context, m chat.Message, res *chat.Stored) (ch change, writes bool, err error) {
	if m.ReplyTo > 0 {
		if res.Answered, err = db.Message(ctx, m.Room, m.ReplyTo); err != nil {
			return ch, false, err
		}
		if res.Answered.Deleted {
			return ch, false, chat.Errorf(chat.CodeGone, "the message it answers was deleted")
		}
	}
	ch, writes, err = db.prepareChange(ctx, m)
	res.Unchanged = err == nil && !writes
	return ch, writes, err
}

// passed passes a frame refused for cause, and returns cause (or the
// failure to pass it).
func (db *DB) passed(ctx context.Context, connID string, frame int64, cause error) error {
	if frame == 0 {
		return cause
	}
	if err := db.passFrame(ctx, connID, frame); err != nil {
		// Internal, whatever the cause: the frame did not take its place,
		// and goes again.
		return fmt.Errorf("%v; and its frame %d did not take its place: %w", cause, frame, err)
	}
	return cause
}

// passFrame gives a numbered frame that stores nothing its place in its
// connection's order (a copy of it may have taken it already).
func (db *DB) passFrame(ctx context.Context, connID string, frame int64) error {
	if err := db.SkipFrame(ctx, connID, frame); err != nil && chat.ErrorCode(err) != chat.CodeInvalidFrame {
		return err
	}
	return nil
}

// nextSeq takes a room's next seq.
func (db *DB) nextSeq(ctx context.Context, room string) (int64, error) {
	out, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &db.tables.Messages,
		Key:                       key(roomPrefix+room, headSK),
		UpdateExpression:          aws.String("ADD seq :one SET #at = :now"),
		ExpressionAttributeNames:  map[string]string{"#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":now": num(ms(db.Now()))},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("take a seq in room %q: %w", room, err)
	}
	var head headItem
	if err := unmarshal(out.Attributes, &head); err != nil {
		return 0, err
	}
	return head.Seq, nil
}

// storeMessage runs the transaction of PutMessage for m.Seq, retrying it
// while it conflicts with another; retake says that the seq was declared
// skipped and the message needs another.
func (db *DB) storeMessage(ctx context.Context, m chat.Message, ch change, connID string, frame int64, res *chat.Stored) (retake bool, err error) {
	exp := m.SentAt.Add(db.MessageRetention).Unix()
	items, idx, err := db.messageTransaction(m, ch, connID, frame, exp)
	if err != nil {
		return false, db.skip(ctx, m.Room, m.Seq, res, err)
	}
	token := rand.Text() // the SDK's own retries of one attempt must not apply it twice
	for attempt := 0; ; attempt++ {
		_, err = db.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: items, ClientRequestToken: aws.String(fmt.Sprintf("%.28s%04d", token, attempt))})
		if err == nil {
			return false, nil
		}
		reasons := cancelReasons(err)
		if len(reasons) != len(items) {
			return false, db.skip(ctx, m.Room, m.Seq, res, fmt.Errorf("put message in room %q: %w", m.Room, err))
		}
		res.Failed++
		switch {
		case reasonIs(reasons[idx.msg], reasonCondition):
			return true, nil // declared skipped by a reader: it holds a tombstone already
		case idx.clientID >= 0 && reasonIs(reasons[idx.clientID], reasonCondition):
			return false, db.skip(ctx, m.Room, m.Seq, res, db.duplicate(ctx, m, reasons[idx.clientID].Item, connID, frame, res))
		case idx.frame >= 0 && reasonIs(reasons[idx.frame], reasonCondition):
			return false, db.skip(ctx, m.Room, m.Seq, res, frameError(reasons[idx.frame].Item, frame))
		case idx.target >= 0 && reasonIs(reasons[idx.target], reasonCondition):
			refused, full := db.refusal(reasons[idx.target].Item, m)
			if full && !ch.listed { // the list was not asked for: no known reason
				return false, db.skip(ctx, m.Room, m.Seq, res, fmt.Errorf("change %d of room %q: refused by the message for no known reason", m.Target, m.Room))
			}
			if !full {
				return false, db.skip(ctx, m.Room, m.Seq, res, db.passed(ctx, connID, frame, refused))
			}
			// The message lists as many who reacted as it may: counted only.
			ch.listed = false
			if items, idx, err = db.messageTransaction(m, ch, connID, frame, exp); err != nil {
				return false, db.skip(ctx, m.Room, m.Seq, res, err)
			}
		case idx.moderator >= 0 && reasonIs(reasons[idx.moderator], reasonCondition):
			demoted := chat.Errorf(chat.CodeNotAllowed, "only its author, or a moderator, may delete a message")
			return false, db.skip(ctx, m.Room, m.Seq, res, db.passed(ctx, connID, frame, demoted))
		case idx.answered >= 0 && reasonIs(reasons[idx.answered], reasonCondition):
			gone := chat.Errorf(chat.CodeGone, "the message it answers was deleted")
			return false, db.skip(ctx, m.Room, m.Seq, res, db.passed(ctx, connID, frame, gone))
		case idx.reaction >= 0 && reasonIs(reasons[idx.reaction], reasonCondition):
			// Made (or taken back) meanwhile, from another connection.
			res.Unchanged = true
			return false, db.skip(ctx, m.Room, m.Seq, res, db.passed(ctx, connID, frame, nil))
		case slices.ContainsFunc(reasons, func(r types.CancellationReason) bool { return reasonIs(r, reasonConflict) }) &&
			attempt < maxConflictRetries:
			// Another transaction on one of these items is in flight.
			if err := chat.Sleep(ctx, conflictBackoff.Delay(attempt)); err != nil {
				return false, db.skip(ctx, m.Room, m.Seq, res, err)
			}
		default:
			return false, db.skip(ctx, m.Room, m.Seq, res, fmt.Errorf("put message in room %q: %w", m.Room, err))
		}
	}
}

// skip writes a tombstone for a seq taken and not used and returns cause
// (the reason it was not used; nil for a duplicate). Only a tombstone this
// call wrote goes into res.Skipped: when the seq already holds an item,
// the transaction whose answer failed may have committed after all (a
// timeout), and the message is there; when the write fails, readers
// declare the seq SkipAfter later.
func (db *DB) skip(ctx context.Context, room string, seq int64, res *chat.Stored, cause error) error {
	// Even when ctx has ended (the reason the seq went unused): a
	// tombstone now spares every reader the wait.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	existing, err := db.tombstone(ctx, room, seq)
	if err != nil {
		return errors.Join(cause, err)
	}
	if existing == nil {
		res.Skipped = append(res.Skipped, seq)
	}
	return cause
}

// tombstone marks a seq that holds nothing as skipped. When the seq
// already holds an item (a message, or another tombstone), it writes
// nothing and returns that item.
func (db *DB) tombstone(ctx context.Context, room string, seq int64) (existing map[string]types.AttributeValue, err error) {
	now := db.Now()
	item, err := marshal(messageItem{keys: keys{roomPrefix + room, msgKey(seq)}, Seq: seq, SentAt: ms(now), Skipped: true,
		ExpiresAt: now.Add(db.MessageRetention).Unix()})
	if err != nil {
		return nil, err
	}
	_, err = db.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &db.tables.Messages, Item: item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	if ccf, ok := errors.AsType[*types.ConditionalCheckFailedException](err); ok {
		return ccf.Item, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mark seq %d of room %q skipped: %w", seq, room, err)
	}
	return nil, nil
}

// txIndex says where each conditional item is in a message transaction;
// -1 for an item it does not have.
type txIndex struct{ frame, msg, clientID, target, reaction, answered, moderator int }

func (db *DB) messageTransaction(m chat.Message, ch change, connID string, frame, exp int64) ([]types.TransactWriteItem, txIndex, error) {
	idx := txIndex{frame: -1, clientID: -1, target: -1, reaction: -1, answered: -1, moderator: -1}
	var items []types.TransactWriteItem
	if frame > 0 {
		idx.frame = len(items)
		items = append(items, types.TransactWriteItem{Update: db.frameMove(connID, frame)})
	}
	text := m.Text
	if m.Kind != "" {
		text = "" // an edit's text goes into the message it edits, and nowhere else: a delete takes it all back
	}
	msg, err := marshal(messageItem{keys: keys{roomPrefix + m.Room, msgKey(m.Seq)}, ID: m.ID, Seq: m.Seq, UserID: m.UserID, Name: m.Name,
		Text: text, SentAt: ms(m.SentAt), ClientID: m.ClientID, ExpiresAt: exp, Kind: m.Kind, Target: m.Target, Emoji: m.Emoji,
		Remove: m.Remove, ReplyTo: m.ReplyTo, Mentions: m.Mentions})
	if err != nil {
		return nil, idx, err
	}
	idx.msg = len(items)
	items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: msg,
		ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	if m.ClientID != "" {
		reserve, err := marshal(clientIDItem{keys: keys{roomPrefix + m.Room, clientIDKey(m.UserID, m.ClientID)}, Seq: m.Seq, ExpiresAt: exp})
		if err != nil {
			return nil, idx, err
		}
		idx.clientID = len(items)
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:                           &db.tables.Messages,
			Item:                                reserve,
			ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #ttl <= :now"),
			ExpressionAttributeNames:            map[string]string{"#ttl": TTLAttribute},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":now": num(db.Now().Unix())},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	if m.ReplyTo > 0 {
		// The message answered is still there: a delete between the read
		// that quoted it and this write refuses the reply, so that no reply
		// goes out quoting a text taken back.
		idx.answered = len(items)
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: &db.tables.Messages, Key: key(roomPrefix+m.Room, msgKey(m.ReplyTo)),
			ConditionExpression:       aws.String(isMessage),
			ExpressionAttributeNames:  map[string]string{"#ttl": TTLAttribute},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(db.Now().Unix())},
		}})
	}
	for _, id := range m.Mentions {
		if id == m.UserID {
			continue
		}
		mention, err := marshal(mentionItem{keys: keys{mentionPrefix + id, mentionKey(m.Room, m.Seq)}, ExpiresAt: exp})
		if err != nil {
			return nil, idx, err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: mention}})
	}
	if m.RemovedBy != "" {
		// A moderator's delete: still a moderator (or the owner) as it is written.
		idx.moderator = len(items)
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: &db.tables.Messages, Key: accessKey(m.Room, m.RemovedBy),
			ConditionExpression:       aws.String("#role IN (:owner, :moderator)"),
			ExpressionAttributeNames:  map[string]string{"#role": "role"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":owner": str(chat.RoleOwner), ":moderator": str(chat.RoleModerator)},
		}})
	}
	if m.Audit != nil {
		audit, err := db.auditPut(m.Room, *m.Audit)
		if err != nil {
			return nil, idx, err
		}
		items = append(items, audit)
	}
	if m.Kind != "" {
		change := db.changeItems(m, ch, exp)
		idx.target = len(items)
		if len(change) > 1 {
			idx.reaction = idx.target + 1
		}
		items = append(items, change...)
	}
	return items, idx, nil
}

// duplicate answers a message whose clientId the sender already used: the
// frame takes its place (unless a copy of the same frame already took it),
// and the original message goes into res.
func (db *DB) duplicate(ctx context.Context, m chat.Message, reserved map[string]types.AttributeValue, connID string, frame int64, res *chat.Stored) error {
	var r clientIDItem
	if err := unmarshal(reserved, &r); err != nil {
		return err
	}
	if frame > 0 {
		if err := db.passFrame(ctx, connID, frame); err != nil {
			return err
		}
	}
	orig, found, err := db.message(ctx, m.Room, r.Seq)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("the original of clientId %q of %s in room %q, seq %d, is gone", m.ClientID, m.UserID, m.Room, r.Seq)
	}
	res.Message, res.Duplicate = orig, true
	return nil
}

// Original returns the message a sender stored with a clientId, if any.
func (db *DB) Original(ctx context.Context, room, userID, clientID string) (chat.Message, bool, error) {
	var r clientIDItem
	found, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, clientIDKey(userID, clientID)), &r)
	if err != nil || !found {
		return chat.Message{}, false, wrap(fmt.Sprintf("get client id %q of %s in room %q", clientID, userID, room), err)
	}
	return db.message(ctx, room, r.Seq)
}

// message returns what a room's seq holds, read strongly consistent: a
// message as it is now, or a change; found is false if it holds nothing
// (skipped, expired, not stored).
func (db *DB) message(ctx context.Context, room string, seq int64) (m chat.Message, found bool, err error) {
	item, err := db.getRaw(ctx, db.tables.Messages, key(roomPrefix+room, msgKey(seq)))
	if err != nil {
		return m, false, fmt.Errorf("get message %d of room %q: %w", seq, room, err)
	}
	if item == nil {
		return m, false, nil
	}
	it, err := readMessage(item)
	if err != nil || it.Skipped {
		return m, false, err
	}
	return it.message(room), true, nil
}

// Message returns the message at a room's seq as it is now: chat.CodeGone
// when the seq holds none (skipped, a change, expired).
func (db *DB) Message(ctx context.Context, room string, seq int64) (chat.Message, error) {
	m, found, err := db.message(ctx, room, seq)
	if err != nil {
		return m, err
	}
	if !found || m.Kind != "" {
		return chat.Message{}, chat.Errorf(chat.CodeGone, "that message is not in this room any more (deleted, or expired)")
	}
	return m, nil
}

// Latest returns a room's latest seq (0 before its first message): the
// last one taken, whose message may still be on its way.
func (db *DB) Latest(ctx context.Context, room string) (int64, error) {
	h, err := db.head(ctx, room)
	return h.Seq, err
}

func (db *DB) head(ctx context.Context, room string) (headItem, error) {
	var h headItem
	if _, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+room, headSK), &h); err != nil {
		return h, fmt.Errorf("get latest seq of room %q: %w", room, err)
	}
	return h, nil
}

// History returns a page of a room's history. With after ≥ 0, the first
// limit seqs above after; with after < 0, the latest limit. before > 0
// keeps only seqs below it.
//
// A seq with no item (taken, its message not stored yet) is left out
// while its writer may still store it; once the seq above it, or the
// room's latest, was taken SkipAfter ago, it is declared skipped here: a
// tombstone is written where the message would go, conditionally, so that
// a late writer finds the seq taken and takes another. So every seq a page
// covers is, within SkipAfter, a message or skipped.
func (db *DB) History(ctx context.Context, room string, after, before int64, limit int) (chat.Page, error) {
	head, err := db.head(ctx, room)
	if err != nil {
		return chat.Page{}, err
	}
	page := chat.Page{Latest: head.Seq}
	forward := after >= 0
	lo, hi := max(after+1, 1), head.Seq
	if before > 0 {
		hi = min(hi, before-1)
	}
	if lo > hi {
		return page, nil // nothing there: no query (DynamoDB refuses BETWEEN a high and a low key)
	}
	// Expired items are read too: an expired message holds nothing any
	// more and never will, as a tombstone.
	items, err := db.queryItems(ctx, &dynamodb.QueryInput{
		TableName:              &db.tables.Messages,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(roomPrefix + room), ":lo": str(msgKey(lo)), ":hi": str(msgKey(hi))},
		ScanIndexForward: aws.Bool(forward),
		Limit:            aws.Int32(int32(limit + 1)),
	}, limit+1, false)
	if err != nil {
		return page, fmt.Errorf("query history of room %q: %w", room, err)
	}
	its := make([]messageItem, len(items))
	for i, item := range items {
		if its[i], err = readMessage(item); err != nil {
			return page, err
		}
		its[i].Skipped = its[i].Skipped || expired(item, db.Now())
	}
	if page.More = len(its) > limit; page.More {
		its = its[:limit]
	}
	if !forward {
		slices.Reverse(its)
	}
	// The range the page covers: read forwards, from after to where the
	// items stop when there are more; read backwards (the latest, or older
	// history), from its oldest item up: what lies below it is older
	// history, for a later page, not holes of this one.
	switch {
	case forward && page.More:
		hi = its[len(its)-1].Seq
	case !forward && len(its) > 0:
		lo = its[0].Seq
	case !forward:
		lo = hi + 1 // nothing at all: no holes to declare
	}
	if forward {
		if first, k := db.jump(head, its, lo, hi, limit); first > lo {
			page.First, lo, its = first, first, its[k:]
		}
	}
	its, err = db.declareSkipped(ctx, room, head, its, lo, hi, limit)
	if err != nil {
		return page, err
	}
	held := map[int64]bool{}
	for _, it := range its {
		if it.Skipped {
			page.Skipped = append(page.Skipped, it.Seq)
		} else {
			page.Messages = append(page.Messages, it.message(room))
			held[it.Seq] = true
		}
	}
	// The messages the page's changes change and its replies answer, as
	// they are now, when the page does not hold them.
	var named []int64
	for _, m := range page.Messages {
		if n := max(m.Target, m.ReplyTo); n > 0 && !held[n] {
			held[n] = true
			named = append(named, n)
		}
	}
	page.Targets, err = db.Messages(ctx, room, named)
	return page, err
}

// jump returns where a forward page of lo..hi (its, the items read)
// should start instead of lo, and the index in its of the first item it
// keeps; or lo and 0. It jumps a stretch at the page's start of more than
// limit seqs that hold nothing (no item, a tombstone, an expired message)
// below a seq taken more than WriterLife ago, so that no writer can still
// store into it. Such a stretch is a room's expired history (DynamoDB's
// TTL deletes it within days) or a mass failure; a client jumps over it
// rather than fetching, and the store writing, a page of tombstones at a
// time.
func (db *DB) jump(head headItem, its []messageItem, lo, hi int64, limit int) (int64, int) {
	k := 0
	for k < len(its) && its[k].Skipped {
		k++
	}
	above, takenAt := hi+1, head.At // the first item that holds a message, or past the range
	if k < len(its) {
		above, takenAt = its[k].Seq, its[k].SentAt
	}
	if above-lo <= int64(limit) || takenAt > ms(db.Now().Add(-db.WriterLife)) {
		return lo, 0
	}
	return above, k
}

// declareSkipped fills the holes of lo..hi in its (items in seq order)
// whose writers' time is up with tombstones, at most limit of them, and
// returns the items with those added, in order.
func (db *DB) declareSkipped(ctx context.Context, room string, head headItem, its []messageItem, lo, hi int64, limit int) ([]messageItem, error) {
	cutoff := ms(db.Now().Add(-db.SkipAfter))
	out := make([]messageItem, 0, len(its))
	next, declared := 0, 0 // its[next] is the first item at or above seq
	for seq := lo; seq <= hi && declared < limit; seq++ {
		if next < len(its) && its[next].Seq == seq {
			out = append(out, its[next])
			next++
			continue
		}
		// seq was taken before the seq above it: when that one was taken
		// (its item's time) or, above every item, when the latest was.
		takenBefore := head.At
		if next < len(its) {
			takenBefore = its[next].SentAt
		}
		if takenBefore > cutoff {
			if next == len(its) {
				break // every hole from here was taken too recently
			}
			seq = its[next].Seq - 1 // the holes up to the next item too
			continue
		}
		declared++
		existing, err := db.tombstone(ctx, room, seq)
		if err != nil {
			return nil, err
		}
		// Declared skipped, or its writer stored it meanwhile (or another
		// reader declared it): the item the condition found.
		it := messageItem{Seq: seq, Skipped: true}
		if existing != nil {
			if it, err = readMessage(existing); err != nil {
				return nil, err
			}
			it.Skipped = it.Skipped || expired(existing, db.Now())
		}
		out = append(out, it)
	}
	return append(out, its[next:]...), nil
}
