#pragma once
// The DeepSeek-V2 decoder's layer walk (arXiv 2405.04434, section 2), written
// once. A step instantiates it with its backend's operations, each applied to
// every row of the step (the tokens of all its sequences): runtime/step.cpp on
// the CPU, engine/cuda/cuda_forward.cpp in the GPU plugin, which sees only this
// header and the C ABI of backend/. What differs between backends is inside the
// operations; the order of the model is here.
//
// Ops provides:
//   embed()                      x = embed_tokens[token]
//   input_norm(l), post_norm(l)  xn = RMSNorm(x) * the layer's input / post-attention norm
//   attention(l)                 out = MLA(xn); the rows' latents go into their caches
//   is_moe(l)                    DeepSeekMoE layer (true) or dense FFN (the first layers)
//   moe(l, i)                    out = shared + routed experts of xn; routing of MoE layer i recorded
//   dense(l)                     out = FFN(xn)
//   add_out()                    x += out
//   logits()                     for the rows that sample: lm_head(RMSNorm(x) * norm)
namespace moelens {

template <class Ops>
void walk_decoder(Ops& ops, int layers)
{
    ops.embed();
    int moe_index = 0;
    for (int l = 0; l < layers; ++l) {
        // h += MLA(RMSNorm(h))
        ops.input_norm(l);
        ops.attention(l);
        ops.add_out();
        // h += FFN(RMSNorm(h)): dense for the first layers, DeepSeekMoE after
        ops.post_norm(l);
        if (ops.is_moe(l))
            ops.moe(l, moe_index++);
        else
            ops.dense(l);
        ops.add_out();
    }
    ops.logits();
}

}  // namespace moelens
