package main

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The JSON shapes below are those of `tofu providers schema -json`.

type jsonProvider struct {
	Provider                 *jsonSchema            `json:"provider"`
	ResourceSchemas          map[string]*jsonSchema `json:"resource_schemas"`
	DataSourceSchemas        map[string]*jsonSchema `json:"data_source_schemas"`
	EphemeralResourceSchemas map[string]*jsonSchema `json:"ephemeral_resource_schemas"`
}

type jsonSchema struct {
	Version int64      `json:"version"`
	Block   *jsonBlock `json:"block"`
}

type jsonBlock struct {
	Attributes  map[string]*jsonAttribute `json:"attributes"`
	BlockTypes  map[string]*jsonBlockType `json:"block_types"`
	Description string                    `json:"description"`
	Deprecated  bool                      `json:"deprecated"`
}

type jsonAttribute struct {
	Type        json.RawMessage `json:"type"`
	NestedType  *jsonNestedType `json:"nested_type"`
	Description string          `json:"description"`
	Required    bool            `json:"required"`
	Optional    bool            `json:"optional"`
	Computed    bool            `json:"computed"`
	Sensitive   bool            `json:"sensitive"`
	Deprecated  bool            `json:"deprecated"`
	WriteOnly   bool            `json:"write_only"`
}

type jsonNestedType struct {
	Attributes  map[string]*jsonAttribute `json:"attributes"`
	NestingMode string                    `json:"nesting_mode"`
}

type jsonBlockType struct {
	NestingMode string     `json:"nesting_mode"`
	Block       *jsonBlock `json:"block"`
	MinItems    int64      `json:"min_items"`
	MaxItems    int64      `json:"max_items"`
}

func convertProvider(raw json.RawMessage) (*tfprotov6.GetProviderSchemaResponse, error) {
	var p jsonProvider
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	resp := &tfprotov6.GetProviderSchemaResponse{
		ServerCapabilities:       &tfprotov6.ServerCapabilities{PlanDestroy: true},
		ResourceSchemas:          map[string]*tfprotov6.Schema{},
		DataSourceSchemas:        map[string]*tfprotov6.Schema{},
		EphemeralResourceSchemas: map[string]*tfprotov6.Schema{},
		Functions:                map[string]*tfprotov6.Function{},
	}
	var err error
	if p.Provider != nil {
		if resp.Provider, err = convertSchema(p.Provider); err != nil {
			return nil, fmt.Errorf("provider config: %w", err)
		}
	} else {
		resp.Provider = &tfprotov6.Schema{Block: &tfprotov6.SchemaBlock{}}
	}
	for _, set := range []struct {
		in  map[string]*jsonSchema
		out map[string]*tfprotov6.Schema
	}{
		{p.ResourceSchemas, resp.ResourceSchemas},
		{p.DataSourceSchemas, resp.DataSourceSchemas},
		{p.EphemeralResourceSchemas, resp.EphemeralResourceSchemas},
	} {
		for name, s := range set.in {
			if set.out[name], err = convertSchema(s); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return resp, nil
}

func convertSchema(s *jsonSchema) (*tfprotov6.Schema, error) {
	b, err := convertBlock(s.Block)
	if err != nil {
		return nil, err
	}
	return &tfprotov6.Schema{Version: s.Version, Block: b}, nil
}

func convertBlock(b *jsonBlock) (*tfprotov6.SchemaBlock, error) {
	if b == nil {
		return &tfprotov6.SchemaBlock{}, nil
	}
	out := &tfprotov6.SchemaBlock{Description: b.Description, Deprecated: b.Deprecated}
	for _, name := range sortedKeys(b.Attributes) {
		a, err := convertAttribute(name, b.Attributes[name])
		if err != nil {
			return nil, err
		}
		out.Attributes = append(out.Attributes, a)
	}
	for _, name := range sortedKeys(b.BlockTypes) {
		bt := b.BlockTypes[name]
		nested, err := convertBlock(bt.Block)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		mode, ok := map[string]tfprotov6.SchemaNestedBlockNestingMode{
			"single": tfprotov6.SchemaNestedBlockNestingModeSingle,
			"list":   tfprotov6.SchemaNestedBlockNestingModeList,
			"set":    tfprotov6.SchemaNestedBlockNestingModeSet,
			"map":    tfprotov6.SchemaNestedBlockNestingModeMap,
			"group":  tfprotov6.SchemaNestedBlockNestingModeGroup,
		}[bt.NestingMode]
		if !ok {
			return nil, fmt.Errorf("block %s: unknown nesting mode %q", name, bt.NestingMode)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov6.SchemaNestedBlock{
			TypeName: name, Block: nested, Nesting: mode, MinItems: bt.MinItems, MaxItems: bt.MaxItems,
		})
	}
	return out, nil
}

func convertAttribute(name string, a *jsonAttribute) (*tfprotov6.SchemaAttribute, error) {
	out := &tfprotov6.SchemaAttribute{
		Name: name, Description: a.Description,
		Required: a.Required, Optional: a.Optional, Computed: a.Computed,
		Sensitive: a.Sensitive, Deprecated: a.Deprecated, WriteOnly: a.WriteOnly,
	}
	switch {
	case a.NestedType != nil:
		obj := &tfprotov6.SchemaObject{}
		mode, ok := map[string]tfprotov6.SchemaObjectNestingMode{
			"single": tfprotov6.SchemaObjectNestingModeSingle,
			"list":   tfprotov6.SchemaObjectNestingModeList,
			"set":    tfprotov6.SchemaObjectNestingModeSet,
			"map":    tfprotov6.SchemaObjectNestingModeMap,
		}[a.NestedType.NestingMode]
		if !ok {
			return nil, fmt.Errorf("attribute %s: unknown nesting mode %q", name, a.NestedType.NestingMode)
		}
		obj.Nesting = mode
		for _, n := range sortedKeys(a.NestedType.Attributes) {
			na, err := convertAttribute(n, a.NestedType.Attributes[n])
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", name, err)
			}
			obj.Attributes = append(obj.Attributes, na)
		}
		out.NestedType = obj
	case len(a.Type) > 0:
		t, err := tftypes.ParseJSONType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		out.Type = t
	default:
		return nil, fmt.Errorf("attribute %s: neither type nor nested_type", name)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
