# The equal-cost baseline of uniadafocus_r18w16-pre-p32-8+4_1xb8-10e_demo-video.py: the same pre-trained
# encoders, glance, classifier and schedule, but no policy: f_L reads P x P patches at random places
# (one per focus frame) of T_L frames spread uniformly over the video (spec Table 9's baselines).
_base_ = ['./uniadafocus_r18w16-pre-p32-8+4_1xb8-10e_demo-video.py']
# (the random-patch branch on, as in the README's run: its patches are random anyway, so the branch
# only gives f_C a second draw of them)
model = dict(spatial_mode='random', temporal_mode='uniform', random_patch_branch=True)
