import pytest
import torch
from einops import rearrange

from tinysora.mlp import count_parameters
from tinysora.vit import (
    POOLS,
    POSITION_KINDS,
    DenoiserConfig,
    PatchEmbed,
    Positions,
    ViT,
    ViTConfig,
    ViTDenoiser,
    conv_patch_embedding,
    patchify,
    sincos_2d,
    unpatchify,
    vit_parameter_count,
)


def test_patchify_cuts_row_by_row_and_unpatchify_inverts_it():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    tokens = patchify(x, 2)
    assert tokens.shape == (2, 6, 12)
    torch.testing.assert_close(tokens[1, 4], x[1, :, 2:4, 2:4].flatten())     # patch (row 1, col 1), (c p q)
    torch.testing.assert_close(unpatchify(tokens, 2, 4, 6), x)


def test_patch_embedding_equals_a_strided_convolution():
    torch.manual_seed(0)
    embed = PatchEmbed(3, 4, 16).double()
    x = torch.rand(2, 3, 16, 12, dtype=torch.float64)
    conv = conv_patch_embedding(embed)
    torch.testing.assert_close(embed(x), rearrange(conv(x), "b d h w -> b (h w) d"), atol=1e-12, rtol=0)
    assert conv.stride == (4, 4) and conv.kernel_size == (4, 4)


def test_sizes_the_patch_does_not_divide_raise_clear_errors():
    with pytest.raises(ValueError, match="image height 9 is not divisible by patch size 2"):
        patchify(torch.rand(1, 1, 9, 8), 2)
    with pytest.raises(ValueError, match="image size 30 is not divisible by patch size 4"):
        ViTConfig(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="do not tile"):
        unpatchify(torch.rand(1, 5, 4), 2, 4, 4)
    model = ViT(ViTConfig(image_size=8, patch_size=2, in_channels=1, dim=16, depth=1, heads=2, mlp_dim=32,
                          num_classes=10))
    with pytest.raises(ValueError, match=r"this ViT takes images \(B, 1, 8, 8\)"):
        model(torch.rand(2, 1, 10, 10))
    with pytest.raises(ValueError, match="unknown position kind"):
        ViTConfig(pos="3d")
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(2, 2, 6)


def test_vit_b16_has_196_tokens_of_768_and_86m_parameters():
    cfg = ViTConfig()
    assert cfg.num_patches == 196 and cfg.patch_values == 768
    assert vit_parameter_count(cfg) == 86_567_656
    with torch.device("meta"):
        assert count_parameters(ViT(cfg)) == 86_567_656


@pytest.mark.parametrize("pos", POSITION_KINDS)
@pytest.mark.parametrize("pool", POOLS)
def test_every_variant_counts_and_runs(pos, pool):
    cfg = ViTConfig(image_size=8, patch_size=2, in_channels=1, dim=16, depth=2, heads=2, mlp_dim=32,
                    num_classes=10, pool=pool, pos=pos)
    model = ViT(cfg)
    assert count_parameters(model) == vit_parameter_count(cfg)
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_sincos_2d_is_row_then_column_embedding():
    table = sincos_2d(3, 4, 8)
    assert table.shape == (12, 8)
    torch.testing.assert_close(table[5, :4], table[4 + 2, :4])        # same row (1) -> same first half
    torch.testing.assert_close(table[5, 4:], table[1, 4:])            # same column (1) -> same second half
    assert not torch.allclose(table[5, :4], table[1, :4])


def test_2d_positions_share_a_row_table_and_a_column_table():
    pos = Positions("2d", 2, 3, 4, cls=True)
    table = pos()
    assert table.shape == (7, 4) and (table[0] == 0).all()            # [CLS] row
    torch.testing.assert_close(table[1 + 4, :2], table[1 + 3, :2])    # row 1, columns 1 and 0
    torch.testing.assert_close(table[1 + 4, 2:], table[1 + 1, 2:])    # column 1, rows 1 and 0


def test_without_positions_a_mean_pooled_vit_ignores_the_patch_order():
    torch.manual_seed(0)
    cfg = dict(image_size=4, patch_size=2, in_channels=1, dim=16, depth=2, heads=2, mlp_dim=32, num_classes=3,
               pool="mean")
    x = torch.rand(2, 1, 4, 4)
    swapped = x.clone()
    swapped[..., :2, :2], swapped[..., 2:, 2:] = x[..., 2:, 2:], x[..., :2, :2]    # exchange two patches
    blind, seeing = ViT(ViTConfig(**cfg, pos="none")), ViT(ViTConfig(**cfg, pos="1d"))
    torch.testing.assert_close(blind(x), blind(swapped))
    assert not torch.allclose(seeing(x), seeing(swapped))


def test_denoiser_keeps_the_shape_and_uses_time_and_class():
    torch.manual_seed(0)
    model = ViTDenoiser(DenoiserConfig(image_size=4, channels=2, patch_size=2, dim=16, depth=1, heads=2, num_classes=3))
    x, t = torch.randn(3, 2, 4, 4), torch.rand(3)
    out = model(x, t, torch.tensor([0, 1, 2]))
    assert out.shape == x.shape
    assert not torch.allclose(out, model(x, t + 0.3, torch.tensor([0, 1, 2])))
    assert not torch.allclose(out, model(x, t, torch.tensor([1, 2, 0])))
    torch.testing.assert_close(model(x, t), model(x, t, torch.full((3,), model.null_class)))
    with pytest.raises(ValueError, match="not divisible by patch size"):
        DenoiserConfig(image_size=5, patch_size=2)


def test_a_small_vit_learns_digits():
    from tinysora.data import load_digits
    from tinysora.training import accuracy, fit_classifier
    torch.manual_seed(0)
    (x, y), (xt, yt) = load_digits("train"), load_digits("test")
    x, xt = x * 2 - 1, xt * 2 - 1                      # [-1, 1], as ViT's inputs
    model = ViT(ViTConfig(image_size=8, patch_size=2, in_channels=1, dim=32, depth=2, heads=4, mlp_dim=64,
                          num_classes=10))
    fit_classifier(model, (x[:, None], y), (xt[:, None], yt), epochs=3, lr=1e-3, batch_size=32)
    assert accuracy(model, xt[:, None], yt) > 0.4                # chance: 0.1
