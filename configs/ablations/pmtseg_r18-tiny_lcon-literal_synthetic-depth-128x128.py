# L_CON as printed (eq. 12-13 read literally): slot i of Q_label is the only positive of slot i of
# Q_task, so slots that carry the same label text (all unmatched slots, slots matched to one
# class) are negatives of each other; its floor is about 2*(n_pad/N)*ln(n_pad) (5.9 here). The
# default is the multi-positive form (every slot with the same text is a positive).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(contrastive_form='literal'))
