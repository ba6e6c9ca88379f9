package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// Changes of a message (edit, delete, react) are stored like messages, at
// a seq of their own, in the same transaction as the update of the message
// they change; docs/storage.md has the layout and the costs.

// Attribute name prefixes of a message's reactions, and the sort key
// prefix of the item that records one user's reaction.
const (
	countPrefix = "rc#"
	whoPrefix   = "rw#"
	reactPrefix = "react#"
)

// isMessage is the condition that an item of a room's seq is a message
// (not a change, not a skipped seq), not deleted and not expired; it uses
// #ttl and :now.
const isMessage = "attribute_exists(id) AND attribute_not_exists(kind) AND attribute_not_exists(deleted) AND #ttl > :now"

// reactionItem records that a user reacted to a message with an emoji:
// pk room#{room}, sk react#{target, 19 digits}#{emoji}#{userId}. Member is
// the element it added to the message's rw#{emoji} set ("" when the set
// was full), for the removal to take out.
type reactionItem struct {
	keys
	Member    string `dynamodbav:"member,omitempty"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
}

func reactionKey(target int64, emoji, userID string) string {
	return fmt.Sprintf("%s%019d#%s#%s", reactPrefix, target, emoji, userID)
}

// readMessage decodes a seq's item with its reactions.
func readMessage(item map[string]types.AttributeValue) (messageItem, error) {
	var it messageItem
	if err := unmarshal(item, &it); err != nil {
		return it, err
	}
	for _, e := range chat.Reactions {
		n, ok := item[countPrefix+e].(*types.AttributeValueMemberN)
		if !ok || n.Value == "0" {
			continue
		}
		count, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return it, fmt.Errorf("decode the count of %s: %w", e, err)
		}
		r := chat.Reaction{Emoji: e, Count: count, Users: []chat.Member{}}
		if who, ok := item[whoPrefix+e].(*types.AttributeValueMemberSS); ok {
			for _, m := range slices.Sorted(slices.Values(who.Value)) {
				userID, name, _ := strings.Cut(m, "\t")
				r.Users = append(r.Users, chat.Member{UserID: userID, Name: name})
			}
		}
		it.Reactions = append(it.Reactions, r)
	}
	return it, nil
}

// change is what a change's transaction needs beyond the change itself:
// whether the reaction is listed by name (the message's list has room),
// and the element a removed reaction added.
type change struct {
	listed bool
	member string
}

// prepareChange reads what a reaction needs before it takes a seq: a
// reaction already made (or, to take back, not made) changes nothing.
func (db *DB) prepareChange(ctx context.Context, m chat.Message) (change, bool, error) {
	ch := change{listed: true}
	if m.Kind != chat.KindReact {
		return ch, true, nil
	}
	var r reactionItem
	found, err := db.getItem(ctx, db.tables.Messages, key(roomPrefix+m.Room, reactionKey(m.Target, m.Emoji, m.UserID)), &r)
	if err != nil {
		return ch, false, fmt.Errorf("get the reaction %s of %s to %d in room %q: %w", m.Emoji, m.UserID, m.Target, m.Room, err)
	}
	ch.member = r.Member
	return ch, found == m.Remove, nil
}

// changeItems are the writes of a change's transaction besides the change
// itself: the update of the message it changes (at index 0) and, for a
// reaction, the item that records it.
func (db *DB) changeItems(m chat.Message, ch change, exp int64) []types.TransactWriteItem {
	names := map[string]string{"#ttl": TTLAttribute}
	values := map[string]types.AttributeValue{":now": num(db.Now().Unix()), ":one": num(1)}
	cond := isMessage
	set := "version = if_not_exists(version, :one) + :one"
	var add, del, remove string
	switch m.Kind {
	case chat.KindEdit, chat.KindDelete:
		names["#text"] = "text"
		if m.RemovedBy != "" {
			// A moderator's delete: anyone's message, marked as removed by them.
			set += ", removedBy = :by"
			values[":by"] = str(m.RemovedBy)
		} else {
			cond += " AND userId = :user"
			values[":user"] = str(m.UserID)
		}
		if m.Kind == chat.KindDelete {
			set += ", deleted = :true"
			values[":true"] = boolean(true)
			remove = " REMOVE #text"
			break
		}
		cond += " AND sentAt >= :cutoff"
		values[":cutoff"] = num(ms(m.SentAt.Add(-db.EditWindow)))
		set += ", #text = :text, edited = :edited"
		values[":text"], values[":edited"] = str(m.Text), num(ms(m.SentAt))
	case chat.KindReact:
		names["#count"] = countPrefix + m.Emoji
		values[":delta"] = num(1)
		if m.Remove {
			values[":delta"] = num(-1)
		}
		add = " ADD #count :delta"
		switch {
		case m.Remove && ch.member != "":
			names["#who"] = whoPrefix + m.Emoji
			del = " DELETE #who :member"
			values[":member"] = &types.AttributeValueMemberSS{Value: []string{ch.member}}
		case !m.Remove && ch.listed:
			ch.member = m.UserID + "\t" + m.Name
			names["#who"] = whoPrefix + m.Emoji
			add += ", #who :member"
			values[":member"] = &types.AttributeValueMemberSS{Value: []string{ch.member}}
			cond += " AND (attribute_not_exists(#who) OR size(#who) < :max)"
			values[":max"] = num(chat.MaxReactors)
		default:
			ch.member = ""
		}
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName: &db.tables.Messages, Key: key(roomPrefix+m.Room, msgKey(m.Target)),
		UpdateExpression:    aws.String("SET " + set + remove + add + del),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}}
	if m.Kind != chat.KindReact {
		return items
	}
	k := key(roomPrefix+m.Room, reactionKey(m.Target, m.Emoji, m.UserID))
	if m.Remove {
		// The record as it was read (a toggle from another tab may have
		// made it again, with another element in the list).
		del := &types.Delete{TableName: &db.tables.Messages, Key: k, ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(#member)"),
			ExpressionAttributeNames: map[string]string{"#member": "member"}}
		if ch.member != "" {
			del.ConditionExpression = aws.String("#member = :member")
			del.ExpressionAttributeValues = map[string]types.AttributeValue{":member": str(ch.member)}
		}
		return append(items, types.TransactWriteItem{Delete: del})
	}
	item, _ := marshal(reactionItem{keys: keys{k["pk"].(*types.AttributeValueMemberS).Value, k["sk"].(*types.AttributeValueMemberS).Value},
		Member: ch.member, ExpiresAt: exp})
	return append(items, types.TransactWriteItem{Put: &types.Put{TableName: &db.tables.Messages, Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)")}})
}

// refusal says why the message a change names refused it, from the item
// as it was (nil: there was none); full says instead that only its list
// of who reacted was full, and the change goes again without it.
func (db *DB) refusal(old map[string]types.AttributeValue, m chat.Message) (err error, full bool) {
	it, decodeErr := readMessage(old)
	switch {
	case old == nil || decodeErr != nil || it.ID == "" || it.Kind != "" || it.Skipped || expired(old, db.Now()):
		return chat.Errorf(chat.CodeGone, "that message is not in this room any more (deleted, or expired)"), false
	case it.Deleted:
		return chat.Errorf(chat.CodeGone, "that message was deleted"), false
	case m.Kind != chat.KindReact && it.UserID != m.UserID:
		return chat.Errorf(chat.CodeNotAllowed, "only its author may edit or delete a message"), false
	case m.Kind == chat.KindEdit:
		return chat.Errorf(chat.CodeTooLate, fmt.Sprintf("a message can be edited for %s after it is sent", db.EditWindow)), false
	case m.Kind == chat.KindReact:
		return nil, true // only the list's room was lacking (when the list was asked for)
	}
	return fmt.Errorf("change %d of room %q: refused by the message for no known reason", m.Target, m.Room), false
}

// Messages returns the messages of a room at seqs, as they are now (a
// strongly consistent BatchGetItem, up to 100 seqs); a seq that holds no
// message (skipped, a change, expired) is left out.
func (db *DB) Messages(ctx context.Context, room string, seqs []int64) ([]chat.Message, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	ks := make([]map[string]types.AttributeValue, len(seqs))
	for i, seq := range seqs {
		ks[i] = key(roomPrefix+room, msgKey(seq))
	}
	items, err := db.batchGet(ctx, db.tables.Messages, ks, true, "")
	if err != nil {
		return nil, fmt.Errorf("read messages %v of room %q: %w", seqs, room, err)
	}
	var msgs []chat.Message
	for _, item := range items {
		it, err := readMessage(item)
		if err != nil {
			return nil, err
		}
		if it.ID != "" && it.Kind == "" && !it.Skipped && !expired(item, db.Now()) {
			msgs = append(msgs, it.message(room))
		}
	}
	slices.SortFunc(msgs, func(a, b chat.Message) int { return int(a.Seq - b.Seq) })
	return msgs, nil
}

// batchGet reads up to 100 keys of one table with BatchGetItem, asking
// again (after a backoff, at most maxBatchTries times) for the keys
// DynamoDB leaves unprocessed.
func (db *DB) batchGet(ctx context.Context, table string, ks []map[string]types.AttributeValue, consistent bool, projection string) ([]map[string]types.AttributeValue, error) {
	if len(ks) > 100 {
		return nil, fmt.Errorf("%d keys: at most 100 at once", len(ks))
	}
	req := types.KeysAndAttributes{Keys: ks, ConsistentRead: aws.Bool(consistent)}
	if projection != "" {
		req.ProjectionExpression = aws.String(projection)
	}
	pending := map[string]types.KeysAndAttributes{table: req}
	var items []map[string]types.AttributeValue
	for try := 0; len(pending) > 0; try++ {
		if try == maxBatchTries {
			return nil, fmt.Errorf("DynamoDB left %d keys unprocessed after %d tries", len(pending[table].Keys), try)
		}
		if try > 0 {
			if err := chat.Sleep(ctx, batchBackoff.Delay(try-1)); err != nil {
				return nil, err
			}
		}
		out, err := db.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return nil, err
		}
		items = append(items, out.Responses[table]...)
		pending = out.UnprocessedKeys
	}
	return items, nil
}
