package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/chat"
)

// Rate limits follow the user, not the connection (a new connection brings
// no fresh burst): each user's buckets are one item, pk limits#{userId},
// sk "limits", holding one time per limit (Unix ms): the generic cell
// rate algorithm, a token bucket written as the time it would be full
// again (chat.Rate.Take).
const (
	limitsPrefix = "limits#"
	limitsSK     = "limits"
	// limitsTTL keeps a user's buckets this long after their last frame:
	// far longer than any bucket takes to refill.
	limitsTTL = time.Hour
)

// buckets names the attribute of the limits item that holds each rate
// limit's theoretical arrival time.
var buckets = map[string]string{chat.RateMessages: "tatMessages", chat.RateReads: "tatReads"}

// TakeToken takes one token from a user's bucket for r.What, for a frame
// arriving at now, and returns the bucket's time after the call; when the
// bucket is empty nothing changes and wait says when a token is back.
//
// It is a conditional update, so concurrent invocations never take more
// tokens than there are. A full bucket (its time passed) starts again
// from now; a bucket in use moves on by one interval if it is not too far
// ahead. Which of the two is tried first follows seen, the bucket's time
// as the caller last saw it (zero: unknown), so that a burst costs one
// request per frame, not two; a bucket found empty costs that one.
func (db *DB) TakeToken(ctx context.Context, userID string, r chat.Rate, now, seen time.Time) (tat time.Time, wait time.Duration, err error) {
	bucket, ok := buckets[r.What]
	if !ok {
		return tat, 0, fmt.Errorf("no rate limit for %q", r.What)
	}
	// Times are kept in milliseconds: decide in them too, or a bucket at
	// now's millisecond looks full here and in use to DynamoDB.
	now = now.Truncate(time.Millisecond)
	k := key(limitsPrefix+userID, limitsSK)
	names := map[string]string{"#b": bucket, "#ttl": TTLAttribute}
	exp := num(now.Add(limitsTTL).Unix())
	fresh := &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: k, ExpressionAttributeNames: names,
		UpdateExpression:          aws.String("SET #b = :next, #ttl = :exp"),
		ConditionExpression:       aws.String("attribute_not_exists(#b) OR #b < :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(ms(now)), ":next": num(ms(now.Add(r.Interval()))), ":exp": exp},
	}
	inUse := &dynamodb.UpdateItemInput{
		TableName: &db.tables.Connections, Key: k, ExpressionAttributeNames: names,
		UpdateExpression:    aws.String("SET #b = #b + :interval, #ttl = :exp"),
		ConditionExpression: aws.String("#b >= :now AND #b <= :latest"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(ms(now)),
			":interval": num(r.Interval().Milliseconds()), ":latest": num(ms(now.Add(r.Tolerance()))), ":exp": exp},
	}
	try := fresh
	if !seen.Before(now) {
		try = inUse
	}
	for range 3 {
		item, ok, err := db.updateReturning(ctx, try)
		if err != nil {
			return tat, 0, fmt.Errorf("take a token for %s of %s: %w", r.What, userID, err)
		}
		var v int64
		if n, isN := item[bucket].(*types.AttributeValueMemberN); isN {
			v, _ = strconv.ParseInt(n.Value, 10, 64)
		}
		tat = optionalMS(v)
		if ok {
			return tat, 0, nil
		}
		if _, wait, ok := r.Take(tat, now); !ok {
			return tat, wait, nil // empty: nothing more to try
		}
		// The other update fits the bucket as it is (it changed since, or
		// the guess was wrong).
		try = fresh
		if !tat.Before(now) {
			try = inUse
		}
	}
	return tat, 0, fmt.Errorf("take a token for %s of %s: the bucket kept changing", r.What, userID)
}

// HoldFrames records that a connection's new-message frames cannot be
// stored before until (a frame of it was refused for its rate limit), so
// that the frames waiting behind that one are refused at once, not left
// waiting. It only moves the time on; a connection not stored is ignored.
func (db *DB) HoldFrames(ctx context.Context, id string, until time.Time) error {
	_, err := db.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &db.tables.Connections,
		Key:                       key(connPrefix+id, lookupSK),
		UpdateExpression:          aws.String("SET heldUntil = :t"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(heldUntil) OR heldUntil < :t)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": num(ms(until))},
	})
	if conditionFailed(err) {
		return nil
	}
	return wrap(fmt.Sprintf("hold the frames of %s", id), err)
}

// updateReturning runs a conditional update that returns the item as it
// is after it (ok) or, when the condition failed, as it was (nil if there
// was none).
func (db *DB) updateReturning(ctx context.Context, in *dynamodb.UpdateItemInput) (item map[string]types.AttributeValue, ok bool, err error) {
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	out, err := db.client.UpdateItem(ctx, in)
	if ccf, isCCF := errors.AsType[*types.ConditionalCheckFailedException](err); isCCF {
		return ccf.Item, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return out.Attributes, true, nil
}
