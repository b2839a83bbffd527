"""The numpy forward passes, oracles for the engines (docs/architecture.md says which is the spec):
`float_forward` (the fp32 graph over a model file's tensors, also the int8 calibration forward),
`int8_ops` (the integer kernels' twins) and `int8_reference` (the int8 graph, bit-exact with the engine)."""
