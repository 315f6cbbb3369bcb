# Speed/accuracy point (issue 12): TMSF key/value token budget 64 instead of the tiny default 256
# (keys/values of the 1/4 and 1/8 scales pooled to 8x8; R50 default 1024).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(neck=dict(max_kv_tokens=64))
