package postgres

import (
	"testing"

	"github.com/jackc/pglogrepl"
)

func TestRowJSON(t *testing.T) {
	rel := &pglogrepl.RelationMessage{Namespace: "public", RelationName: "t", Columns: []*pglogrepl.RelationMessageColumn{
		{Name: "region", Flags: 1, DataType: 25},
		{Name: "id", Flags: 1, DataType: oidInt8},
		{Name: "price", DataType: oidNumeric},
		{Name: "big", DataType: 25},
		{Name: "gone", DataType: oidFloat8},
	}}
	text := func(s string) *pglogrepl.TupleDataColumn {
		return &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(s)}
	}
	tuple := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
		text(`eu"1`), text("42"), text("NaN"),
		{DataType: pglogrepl.TupleDataTypeToast},
		{DataType: pglogrepl.TupleDataTypeNull},
	}}
	key, value := rowJSON(rel, tuple)
	if key != `["eu\"1","42"]` {
		t.Errorf("key = %s", key)
	}
	if string(value) != `{"region":"eu\"1","id":42,"price":"NaN","gone":null}` {
		t.Errorf("value = %s", value)
	}
}

func TestCDCRecordNeedsItsRelation(t *testing.T) {
	d := decoder2{relations: map[uint32]*pglogrepl.RelationMessage{}}
	if _, err := d.record(&pglogrepl.InsertMessage{RelationID: 7, Tuple: &pglogrepl.TupleData{}}, 0); err == nil {
		t.Fatal("a change before its relation message was accepted")
	}
}
