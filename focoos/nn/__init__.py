"""Typed configs in Focoos' layout (`focoos.nn.backbone.*Config`); torch-free, so clients can read them."""
