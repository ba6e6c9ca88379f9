package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// Room names are compared without regard to case: a room is stored under
// chat.RoomKey of its name. A room stored before that rule under a name
// with capitals (its messages' head exists under that exact name) keeps
// it, so that its history stays readable by its old name; no new room is
// stored under a name with capitals.

// ResolveRoom returns the key a room named as a client typed it is stored
// under. A name without capitals costs no request.
func (db *DB) ResolveRoom(ctx context.Context, name string) (string, error) {
	folded := chat.RoomKey(name)
	if folded == name || chat.Private(name) { // private rooms are newer than the rule
		return folded, nil
	}
	out, err := db.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &db.tables.Messages, Key: key(roomPrefix+name, headSK),
		ProjectionExpression: aws.String("seq"),
	})
	if err != nil {
		return "", fmt.Errorf("look for room %q stored before names were folded: %w", name, err)
	}
	if out.Item != nil {
		return name, nil
	}
	return folded, nil
}

// maxBatchTries bounds the BatchGetItem calls of RoomHeads: the keys
// DynamoDB leaves unprocessed (throttled) are asked again, after a backoff,
// and reported as an error after the last try.
const maxBatchTries = 3

var batchBackoff = chat.Backoff{First: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// mentionItem records that a message mentions a user: pk
// mention#{userId}, sk {room}#{seq, 19 digits}, so that the mentions of a
// user in a room above a seq are one range of one partition.
type mentionItem struct {
	keys
	ExpiresAt int64 `dynamodbav:"expiresAt"`
}

const mentionPrefix = "mention#"

func mentionKey(room string, seq int64) string { return fmt.Sprintf("%s#%019d", room, seq) }

// maxMentionCount bounds the count of mentions RoomHeads reads per room:
// a page shows "99+" past it anyway.
const maxMentionCount = 100

// RoomHeads returns the latest seq of each named room (0 for a room with
// no message), in the order of names, under the names as given; rooms are
// resolved as ResolveRoom does. It is one BatchGetItem of eventually
// consistent reads (a seq may be a moment behind), for up to 50 names
// (two keys each). With seen (a seq per name), it also counts the
// messages above it that mention userID, up to maxMentionCount: one Query
// (COUNT) per room with anything above seen.
func (db *DB) RoomHeads(ctx context.Context, names []string, userID string, seen []int64) ([]chat.RoomHead, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var ks []map[string]types.AttributeValue
	asked := map[string]bool{}
	for _, n := range names {
		for _, k := range []string{n, chat.RoomKey(n)} {
			if !asked[k] {
				asked[k] = true
				ks = append(ks, key(roomPrefix+k, headSK))
			}
		}
	}
	if len(ks) > 100 {
		return nil, fmt.Errorf("read the heads of %d rooms: at most 50 at once", len(names))
	}
	items, err := db.batchGet(ctx, db.tables.Messages, ks, false, "pk, seq")
	if err != nil {
		return nil, fmt.Errorf("read the heads of rooms %q: %w", names, err)
	}
	seqs := map[string]int64{}
	found := map[string]bool{}
	for _, item := range items {
		var h headItem
		if err := unmarshal(item, &h); err != nil {
			return nil, err
		}
		room := h.PK[len(roomPrefix):]
		seqs[room], found[room] = h.Seq, true
	}
	heads := make([]chat.RoomHead, len(names))
	for i, n := range names {
		k := chat.RoomKey(n)
		if found[n] {
			k = n // stored before names were folded
		}
		heads[i] = chat.RoomHead{Room: n, Seq: seqs[k]}
		if i >= len(seen) || seen[i] >= heads[i].Seq {
			continue
		}
		out, err := db.client.Query(ctx, &dynamodb.QueryInput{
			TableName:              &db.tables.Messages,
			KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(mentionPrefix + userID), ":lo": str(mentionKey(k, seen[i]+1)), ":hi": str(mentionKey(k, heads[i].Seq))},
			Select: types.SelectCount,
			Limit:  aws.Int32(maxMentionCount),
		})
		if err != nil {
			return nil, fmt.Errorf("count the mentions of %s in room %q: %w", userID, k, err)
		}
		heads[i].Mentions = int64(out.Count)
		if heads[i].Unread, heads[i].UnreadMore, err = db.countUnread(ctx, k, userID, seen[i], heads[i].Seq); err != nil {
			return nil, err
		}
	}
	return heads, nil
}

// maxUnreadSeqs bounds the seqs countUnread reads per room: a page shows
// "99+" past it anyway.
const maxUnreadSeqs = 100

// countUnread counts the messages of room in seqs after seen up to latest
// that the user would read as new: not changes, access changes or skipped
// seqs, not their own, not deleted, not expired. It reads at most
// maxUnreadSeqs items (one Query, eventually consistent: a count a second
// behind is shown a minute later anyway), and says whether more remain.
func (db *DB) countUnread(ctx context.Context, room, userID string, seen, latest int64) (int64, bool, error) {
	out, err := db.client.Query(ctx, &dynamodb.QueryInput{
		TableName:              &db.tables.Messages,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		FilterExpression: aws.String("attribute_not_exists(kind) AND attribute_not_exists(skipped) AND attribute_not_exists(deleted) " +
			"AND userId <> :me AND #ttl > :now"),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(roomPrefix + room), ":lo": str(msgKey(seen + 1)), ":hi": str(msgKey(latest)),
			":me": str(userID), ":now": num(db.Now().Unix())},
		Select: types.SelectCount,
		Limit:  aws.Int32(maxUnreadSeqs),
	})
	if err != nil {
		return 0, false, fmt.Errorf("count the unread messages of %s in room %q: %w", userID, room, err)
	}
	return int64(out.Count), out.LastEvaluatedKey != nil, nil
}
