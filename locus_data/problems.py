"""The dataset's question texts (the ``problem`` column), with one ``<image>`` marker per image of the row.

Backbone-neutral on purpose: coordinate conventions and think/answer tags come from each recipe's format prompt
(:mod:`locus_train.prompting` renders them the way EasyR1 does).
"""

IMAGE_MARKER = "<image>"
"""where EasyR1 splits the rendered prompt into image parts; ``images`` holds the images in marker order"""

CUE_SEARCH_PROBLEM = (
    "<image>\n"
    "This is the full image.\n"
    "<image>\n"
    "This is a small region (the visual cue) cropped from the full image, possibly rescaled.\n"
    "Find where the visual cue is located in the full image and give its bounding box in the full image."
)
"""cue search: the full image, then the cue"""

TEXT_CUE_PROBLEM = (
    "<image>\n"
    "Please find the object described by the following text in the image: {expression}\n"
    "Give its bounding box in the image."
)
"""the text-cue baseline (paper Table 5): the same ground truth, the cue replaced by a referring expression"""
