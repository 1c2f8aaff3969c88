import Foundation

/// Rotary position embedding in Hugging Face's rotate-half layout: element i
/// pairs with i + headDim/2 (GGUF files are un-permuted to this layout at load).
public struct Rope: Sendable {
    public let headDim: Int
    /// Inverse frequencies, float32 as transformers computes them.
    public let invFreq: [Float]

    public init(headDim: Int, theta: Double, scaling: RopeScaling?) {
        self.headDim = headDim
        let half = headDim / 2
        // transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in float32.
        var inv = (0..<half).map { i in Float(1.0 / pow(Float(theta), Float(2 * i) / Float(headDim))) }
        if let s = scaling, s.type == "llama3" {
            let lowWavelen = Double(s.originalMaxPositionEmbeddings) / s.lowFreqFactor
            let highWavelen = Double(s.originalMaxPositionEmbeddings) / s.highFreqFactor
            inv = inv.map { f in
                let wavelen = 2 * Double.pi / Double(f)
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return Float(Double(f) / s.factor) }
                let smooth = (Double(s.originalMaxPositionEmbeddings) / wavelen - s.lowFreqFactor)
                    / (s.highFreqFactor - s.lowFreqFactor)
                return Float((1 - smooth) * Double(f) / s.factor + smooth * Double(f))
            }
        } else if let s = scaling, s.type == "linear" {
            // transformers' linear scaling: inv_freq / factor, in float32 (positions stretched by the factor).
            let f = Float(s.factor)
            inv = inv.map { $0 / f }
        }
        invFreq = inv
    }

    /// Rotates `heads` vectors of `headDim` floats at `x` (contiguous) for position `pos`.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, position pos: Int) {
        let half = headDim / 2
        for i in 0..<half {
            let angle = Float(pos) * invFreq[i]
            let c = Float(cos(Double(angle))), s = Float(sin(Double(angle)))
            for h in 0..<heads {
                let p = x + h * headDim
                let a = p[i], b = p[i + half]
                p[i] = a * c - b * s
                p[i + half] = b * c + a * s
            }
        }
    }
}
